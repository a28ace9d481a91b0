#pragma once
// A read-only memory-mapped file. Weights are views into it, so it must outlive them (the model
// holds it by shared_ptr). from_bytes() makes the same object over bytes in memory, so that the
// readers can be run on buffers (fuzzing: a heap buffer of the exact size lets AddressSanitizer
// see a read one byte past the end, which a mapping, rounded up to a page, hides).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mamba/error.hpp"

namespace mamba {

class MappedFile {
 public:
  static std::shared_ptr<const MappedFile> open(const std::string& path) {
    return std::shared_ptr<const MappedFile>(new MappedFile(path));
  }
  // `name` stands in for the path in messages.
  static std::shared_ptr<const MappedFile> from_bytes(std::string name,
                                                      std::vector<std::byte> bytes) {
    auto f = std::shared_ptr<MappedFile>(new MappedFile());
    f->path_ = std::move(name);
    f->owned_ = std::move(bytes);
    f->data_ = f->owned_.data();
    f->size_ = f->owned_.size();
    return f;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr && size_ > 0 && owned_.empty())
      munmap(const_cast<std::byte*>(data_), size_);
  }

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  explicit MappedFile(std::string path) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path_ + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(path_ + ": not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw Error(path_ + ": mmap failed: " + std::strerror(errno));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::vector<std::byte> owned_;  // from_bytes() only
};

}  // namespace mamba

#pragma once
// The entries of a zip archive held in memory (a mapped file), as views: only entries stored
// without compression can be read, which is how torch.save writes its archives (so that tensor
// data can be mapped in place). Zip64 archives (over 4 GiB or 65535 entries) are read too. Every
// offset and length is checked against the bytes before it is used; CRCs are not checked.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>

#include "mamba/error.hpp"

namespace mamba {

class ZipArchive {
 public:
  struct Entry {
    uint64_t local_offset = 0;  // of its local header
    uint64_t size = 0;          // uncompressed
    uint64_t compressed_size = 0;
    uint16_t method = 0;  // 0: stored
    uint16_t flags = 0;   // bit 0: encrypted
  };

  // `path` names the archive in messages.
  ZipArchive(std::span<const std::byte> bytes, std::string path)
      : bytes_(bytes), path_(std::move(path)) {
    read_central_directory();
  }

  const std::map<std::string, Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }

  // The bytes of an entry stored without compression.
  std::span<const std::byte> data(const std::string& name) const {
    const Entry* e = find(name);
    if (!e) fail("no entry '" + name + "'");
    if (e->flags & 1) fail("entry '" + name + "' is encrypted");
    if (e->method != 0 || e->compressed_size != e->size)
      fail("entry '" + name + "' is compressed (method " + std::to_string(e->method) +
           "); only stored entries are read");
    constexpr uint64_t kLocalHeader = 30;
    if (!fits(e->local_offset, kLocalHeader))
      fail("local header of '" + name + "' lies past the end of the file");
    const uint64_t h = e->local_offset;
    if (u32(h) != 0x04034b50) fail("local header of '" + name + "' has a bad signature");
    const uint64_t start = h + kLocalHeader + u16(h + 26) + u16(h + 28);
    if (!fits(start, e->size))
      fail("entry '" + name + "' (" + std::to_string(e->size) + " bytes at " +
           std::to_string(start) + ") runs past the end of the file (" +
           std::to_string(bytes_.size()) + " bytes)");
    return bytes_.subspan(start, e->size);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(path_ + ": " + what); }
  bool fits(uint64_t offset, uint64_t n) const {
    return offset <= bytes_.size() && n <= bytes_.size() - offset;
  }
  template <class U>
  U read(uint64_t at) const {
    if (!fits(at, sizeof(U)))
      fail("zip structure at byte " + std::to_string(at) + " lies past the end of the file");
    U v;
    std::memcpy(&v, bytes_.data() + at, sizeof(U));
    return v;
  }
  uint16_t u16(uint64_t at) const { return read<uint16_t>(at); }
  uint32_t u32(uint64_t at) const { return read<uint32_t>(at); }
  uint64_t u64(uint64_t at) const { return read<uint64_t>(at); }

  void read_central_directory() {
    // The end-of-central-directory record: 22 bytes and a comment of up to 65535, at the end.
    constexpr uint64_t kEocd = 22;
    const uint64_t size = bytes_.size();
    if (size < kEocd) fail("not a zip archive (" + std::to_string(size) + " bytes)");
    uint64_t eocd = size - kEocd;
    const uint64_t lowest = size >= kEocd + 65535 ? size - kEocd - 65535 : 0;
    while (u32(eocd) != 0x06054b50) {
      if (eocd == lowest) fail("not a zip archive (no end-of-central-directory record)");
      --eocd;
    }
    uint64_t count = u16(eocd + 10), cd_size = u32(eocd + 12), cd_offset = u32(eocd + 16);
    // Zip64: a locator right before the record points at the 64-bit record.
    if (eocd >= 20 && u32(eocd - 20) == 0x07064b50) {
      const uint64_t r = u64(eocd - 20 + 8);
      if (u32(r) != 0x06064b50) fail("zip64 end-of-central-directory record not found");
      count = u64(r + 32);
      cd_size = u64(r + 40);
      cd_offset = u64(r + 48);
    }
    if (!fits(cd_offset, cd_size))
      fail("central directory (" + std::to_string(cd_size) + " bytes at " +
           std::to_string(cd_offset) + ") runs past the end of the file");
    constexpr uint64_t kCentralHeader = 46;
    if (count > cd_size / kCentralHeader)
      fail(std::to_string(count) + " entries cannot fit in a central directory of " +
           std::to_string(cd_size) + " bytes");
    uint64_t p = cd_offset;
    const uint64_t end = cd_offset + cd_size;
    for (uint64_t i = 0; i < count; ++i) {
      if (p + kCentralHeader > end || u32(p) != 0x02014b50)
        fail("central directory entry " + std::to_string(i) + " is damaged");
      Entry e;
      e.flags = u16(p + 8);
      e.method = u16(p + 10);
      e.compressed_size = u32(p + 20);
      e.size = u32(p + 24);
      const uint64_t name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
      e.local_offset = u32(p + 42);
      const uint64_t name_at = p + kCentralHeader, extra_at = name_at + name_len;
      const uint64_t next = extra_at + extra_len + comment_len;
      if (next > end) fail("central directory entry " + std::to_string(i) + " runs past its end");
      read_zip64_extra(extra_at, extra_len, e);
      std::string name(reinterpret_cast<const char*>(bytes_.data() + name_at), name_len);
      entries_.insert_or_assign(std::move(name), e);
      p = next;
    }
  }

  // The zip64 extra field (id 1) holds, in this order, each of the sizes and the offset that
  // the fixed header marks as 0xFFFFFFFF.
  void read_zip64_extra(uint64_t at, uint64_t len, Entry& e) const {
    constexpr uint64_t kMarked = 0xFFFFFFFF;
    for (uint64_t q = at; q + 4 <= at + len;) {
      const uint16_t id = u16(q), n = u16(q + 2);
      if (q + 4 + n > at + len) fail("an extra field runs past its entry");
      if (id == 1) {
        uint64_t f = q + 4;
        for (uint64_t* v : {&e.size, &e.compressed_size, &e.local_offset}) {
          if (*v != kMarked) continue;
          if (f + 8 > q + 4 + n) fail("zip64 extra field too short");
          *v = u64(f);
          f += 8;
        }
      }
      q += 4 + n;
    }
  }

  std::span<const std::byte> bytes_;
  std::string path_;
  std::map<std::string, Entry> entries_;
};

}  // namespace mamba

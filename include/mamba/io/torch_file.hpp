#pragma once
// PyTorch's torch.save files (pytorch_model.bin, *.pt), as the original state-spaces checkpoints
// ship: a zip archive of `<prefix>/data.pkl`, a pickle of the state dict, and one entry
// `<prefix>/data/<key>` of raw little-endian bytes per storage. The pickle is read by a small
// interpreter that knows only what a state dict of tensors needs (dicts, tuples, numbers,
// strings, and the globals collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter, torch.*Storage); it builds those values and runs nothing, so an archive
// that asks for any other global is refused by name. Tensors are views into the mapping.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/io/mmap.hpp"
#include "mamba/io/zip.hpp"
#include "mamba/ops/dtype.hpp"

namespace mamba {

namespace torch_detail {

// The storage classes torch pickles, with their element sizes.
struct StorageType {
  const char* name;
  uint64_t element_size;
  std::optional<DType> dtype;
};
inline const StorageType* find_storage_type(const std::string& name) {
  static const StorageType types[] = {
      {"FloatStorage", 4, DType::F32},     {"HalfStorage", 2, DType::F16},
      {"BFloat16Storage", 2, DType::BF16}, {"DoubleStorage", 8, std::nullopt},
      {"LongStorage", 8, std::nullopt},    {"IntStorage", 4, std::nullopt},
      {"ShortStorage", 2, std::nullopt},   {"CharStorage", 1, std::nullopt},
      {"ByteStorage", 1, std::nullopt},    {"BoolStorage", 1, std::nullopt}};
  for (const auto& t : types)
    if (name == t.name) return &t;
  return nullptr;
}

// A value the pickle builds. Values live in the machine's arena and point at each other by plain
// pointers: a pickle can make cycles (a dict set into itself) and deep nests, and neither then
// leaks or recurses when the values are freed.
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor } kind;
  int64_t i = 0;                      // Bool, Int; Storage, Tensor: the storage's element count
  std::string s;                      // Str; Global: "module.name"; Storage: its key
  const StorageType* type = nullptr;  // Storage, Tensor
  std::vector<Value*> items;          // Tuple, List; Dict: key, value, key, value...
  // Tensor: its storage's key, the offset into it and the shape and strides, in elements
  std::string storage_key;
  int64_t offset = 0;
  std::vector<int64_t> shape, stride;
};

// Runs a pickle of a state dict: the opcodes of protocols 2-5 that such pickles use, the globals
// a dict of tensors needs, and nothing else. `fail` throws.
class Unpickler {
 public:
  using Fail = std::function<void(const std::string&)>;
  Unpickler(std::span<const std::byte> pickle, Fail fail) : b_(pickle), fail_(std::move(fail)) {}

  // The pickled object; valid while the Unpickler lives.
  const Value& run() {
    while (true) {
      const uint8_t op = u8();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t proto = u8();
          if (proto < 2 || proto > 5) error("protocol " + std::to_string(proto) + " is not read");
          break;
        }
        case 0x95:  // FRAME
          skip(8);
          break;
        case '.':  // STOP
          return *pop();
        case '(':  // MARK
          marks_.push_back(stack_.size());
          break;
        case '0':  // POP
          pop();
          break;
        case '1':  // POP_MARK
          since_mark();
          break;
        case '2':  // DUP
          push(&top());
          break;
        case 'N':  // NONE
          push(make(Value::None));
          break;
        case 0x88:  // NEWTRUE
        case 0x89:  // NEWFALSE
          push(integer(op == 0x88, Value::Bool));
          break;
        case 'K':  // BININT1
          push(integer(u8()));
          break;
        case 'M':  // BININT2
          push(integer(static_cast<int64_t>(le(2))));
          break;
        case 'J':  // BININT
          push(integer(static_cast<int32_t>(le(4))));
          break;
        case 0x8a: {  // LONG1
          const uint8_t n = u8();
          if (n > 8) error("an integer of " + std::to_string(n) + " bytes");
          uint64_t x = le(n);
          if (n > 0 && n < 8 && (x >> (8 * n - 1)) != 0) x |= ~uint64_t{0} << (8 * n);  // sign
          push(integer(static_cast<int64_t>(x)));
          break;
        }
        case 'G':  // BINFLOAT (its value is not needed)
          skip(8);
          push(make(Value::Float));
          break;
        case 'X':  // BINUNICODE
          push(string(le(4)));
          break;
        case 0x8c:  // SHORT_BINUNICODE
          push(string(u8()));
          break;
        case 0x8d:  // BINUNICODE8
          push(string(le(8)));
          break;
        case 'U':  // SHORT_BINSTRING
          push(string(u8()));
          break;
        case 'T':  // BINSTRING
          push(string(le(4)));
          break;
        case '}':  // EMPTY_DICT
          push(make(Value::Dict));
          break;
        case ']':  // EMPTY_LIST
          push(make(Value::List));
          break;
        case ')':  // EMPTY_TUPLE
          push(make(Value::Tuple));
          break;
        case 't':  // TUPLE
          push(make(Value::Tuple, since_mark()));
          break;
        case 'l':  // LIST
          push(make(Value::List, since_mark()));
          break;
        case 'd': {  // DICT
          Value* d = make(Value::Dict);
          add(*d, since_mark());
          push(d);
          break;
        }
        case 0x85:    // TUPLE1
        case 0x86:    // TUPLE2
        case 0x87: {  // TUPLE3
          std::vector<Value*> items(op - 0x84);
          for (size_t k = items.size(); k-- > 0;) items[k] = pop();
          push(make(Value::Tuple, std::move(items)));
          break;
        }
        case 's': {  // SETITEM
          Value* value = pop();
          Value* key = pop();
          add(top(), {key, value});
          break;
        }
        case 'a': {  // APPEND
          Value* v = pop();
          add(top(), {v});
          break;
        }
        case 'u':    // SETITEMS
        case 'e': {  // APPENDS
          auto items = since_mark();
          add(top(), std::move(items));
          break;
        }
        case 'q':  // BINPUT
          memo_[u8()] = &top();
          break;
        case 'r':  // LONG_BINPUT
          memo_[le(4)] = &top();
          break;
        case 0x94: {  // MEMOIZE
          const uint64_t k = memo_.size();
          memo_[k] = &top();
          break;
        }
        case 'h':    // BINGET
        case 'j': {  // LONG_BINGET
          const uint64_t k = op == 'h' ? u8() : le(4);
          auto it = memo_.find(k);
          if (it == memo_.end()) error("memo entry " + std::to_string(k) + " was never stored");
          push(it->second);
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          const std::string module = line();
          push(global(module, line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Value* name = pop();
          Value* module = pop();
          if (name->kind != Value::Str || module->kind != Value::Str)
            error("STACK_GLOBAL needs two strings");
          push(global(module->s, name->s));
          break;
        }
        case 'Q':  // BINPERSID
          push(persistent(*pop()));
          break;
        case 'R': {  // REDUCE
          Value* args = pop();
          Value* callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 'b': {  // BUILD: the state of an OrderedDict (its _metadata) or of a Parameter
          pop();
          if (top().kind != Value::Dict && top().kind != Value::Tensor)
            error("BUILD on a value that is not a dict or a tensor");
          break;
        }
        default: {
          static const char* hex = "0123456789abcdef";
          raise(std::string("data.pkl: unsupported pickle opcode 0x") + hex[op >> 4] +
                hex[op & 15] + " at byte " + std::to_string(pos_ - 1));
        }
      }
    }
  }

 private:
  // A real state dict makes some 15 values per tensor; this bounds what a hostile one allocates.
  static constexpr size_t kMaxValues = size_t{1} << 20;

  [[noreturn]] void raise(const std::string& what) const {
    fail_(what);
    std::abort();  // fail_ throws
  }
  [[noreturn]] void error(const std::string& what) const {
    raise("data.pkl: pickle at byte " + std::to_string(pos_) + ": " + what);
  }

  Value* make(Value::Kind k, std::vector<Value*> items = {}) {
    if (arena_.size() == kMaxValues)
      error("more than " + std::to_string(kMaxValues) + " values: not a state dict");
    arena_.push_back(std::make_unique<Value>());
    Value* v = arena_.back().get();
    v->kind = k;
    v->items = std::move(items);
    return v;
  }
  Value* integer(int64_t x, Value::Kind k = Value::Int) {
    Value* v = make(k);
    v->i = x;
    return v;
  }
  Value* string(uint64_t n) {
    need(n);
    Value* v = make(Value::Str);
    v->s.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return v;
  }

  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      error("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      error("stack underflow");
    return *stack_.back();
  }
  std::vector<Value*> since_mark() {
    if (marks_.empty()) error("no mark");
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                              stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  void add(Value& container, std::vector<Value*> items) {
    if (container.kind == Value::Dict && items.size() % 2 != 0)
      error("a key without a value for a dict");
    if (container.kind != Value::Dict && container.kind != Value::List)
      error("items added to a value that is not a dict or a list");
    container.items.insert(container.items.end(), items.begin(), items.end());
  }

  Value* global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    const bool known = full == "collections.OrderedDict" ||
                       full == "torch._utils._rebuild_tensor_v2" ||
                       full == "torch._utils._rebuild_parameter" ||
                       full == "torch._utils._rebuild_parameter_with_state" ||
                       (module == "torch" && find_storage_type(name));
    if (!known) raise("data.pkl: unsupported global '" + full + "' (only tensors are read)");
    Value* v = make(Value::Global);
    v->s = full;
    return v;
  }

  // ('storage', torch.<X>Storage, key, location, element count)
  Value* persistent(const Value& pid) {
    const auto& it = pid.items;
    if (pid.kind != Value::Tuple || it.size() != 5 || it[0]->kind != Value::Str ||
        it[0]->s != "storage" || it[1]->kind != Value::Global || it[2]->kind != Value::Str ||
        it[4]->kind != Value::Int)
      error("a persistent id that is not ('storage', type, key, location, size)");
    const std::string prefix = "torch.";
    const StorageType* type = it[1]->s.compare(0, prefix.size(), prefix) == 0
                                  ? find_storage_type(it[1]->s.substr(prefix.size()))
                                  : nullptr;
    if (!type) error("'" + it[1]->s + "' is not a storage type");
    Value* v = make(Value::Storage);
    v->type = type;
    v->s = it[2]->s;
    v->i = it[4]->i;
    return v;
  }

  Value* reduce(const Value& callable, const Value& args) {
    if (callable.kind != Value::Global || args.kind != Value::Tuple)
      error("REDUCE needs a global and a tuple of arguments");
    const auto& a = args.items;
    if (callable.s == "collections.OrderedDict") {
      if (!a.empty()) error("OrderedDict called with arguments");
      return make(Value::Dict);
    }
    if (callable.s != "torch._utils._rebuild_tensor_v2") {
      // _rebuild_parameter(tensor, requires_grad, hooks[, state]): the tensor
      if (a.empty() || a[0]->kind != Value::Tensor) error(callable.s + " without a tensor");
      return a[0];
    }
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])
    Value* v = make(Value::Tensor);
    auto ints = [](const Value& t, std::vector<int64_t>& out) {
      if (t.kind != Value::Tuple) return false;
      for (const Value* x : t.items) {
        if (x->kind != Value::Int) return false;
        out.push_back(x->i);
      }
      return true;
    };
    if (a.size() < 4 || a[0]->kind != Value::Storage || a[1]->kind != Value::Int ||
        !ints(*a[2], v->shape) || !ints(*a[3], v->stride) || v->shape.size() != v->stride.size())
      error("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
    v->type = a[0]->type;
    v->storage_key = a[0]->s;
    v->i = a[0]->i;
    v->offset = a[1]->i;
    return v;
  }

  // Bounds-checked reads.
  void need(uint64_t n) const {
    if (n > b_.size() - pos_)
      raise("data.pkl: pickle ends at byte " + std::to_string(b_.size()) +
            " in the middle of an instruction (truncated, or no STOP)");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint64_t le(int n) {
    need(static_cast<uint64_t>(n));
    uint64_t x = 0;
    for (int k = 0; k < n; ++k) x |= uint64_t{static_cast<uint8_t>(b_[pos_ + k])} << (8 * k);
    pos_ += static_cast<uint64_t>(n);
    return x;
  }
  void skip(uint64_t n) {
    need(n);
    pos_ += n;
  }
  std::string line() {
    const uint64_t start = pos_;
    while (u8() != '\n') {
    }
    return std::string(reinterpret_cast<const char*>(b_.data() + start), pos_ - 1 - start);
  }

  std::span<const std::byte> b_;
  Fail fail_;
  uint64_t pos_ = 0;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

}  // namespace torch_detail

class TorchFile {
 public:
  struct Tensor {
    std::string storage_type;    // the pickled storage class ("FloatStorage", "HalfStorage", ...)
    std::optional<DType> dtype;  // empty for types the library does not compute with
    std::vector<int64_t> shape;  // torch order
    const std::byte* data = nullptr;
    uint64_t nbytes = 0;
  };

  static TorchFile open(const std::string& path) { return from_file(MappedFile::open(path)); }
  // The same over a file already open (or bytes in memory: MappedFile::from_bytes).
  static TorchFile from_file(std::shared_ptr<const MappedFile> file) {
    TorchFile f;
    f.file_ = std::move(file);
    f.parse();
    return f;
  }

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  using Value = torch_detail::Value;
  // data.pkl of a large model's state dict is well under 1 MiB.
  static constexpr uint64_t kMaxPickle = uint64_t{16} << 20;

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(file_->path() + ": " + what);
  }

  void parse() {
    const ZipArchive zip(file_->bytes(), file_->path());
    std::string prefix;
    bool found = false;
    for (const auto& [name, entry] : zip.entries()) {
      const auto slash = name.find('/');
      if (slash == std::string::npos || name.substr(slash + 1) != "data.pkl") continue;
      if (found) fail("two data.pkl entries: not one torch.save archive");
      prefix = name.substr(0, slash + 1);
      found = true;
    }
    if (!found) fail("no data.pkl entry: not a torch.save archive");
    if (zip.find(prefix + "byteorder")) {
      const auto order = zip.data(prefix + "byteorder");
      if (std::string(reinterpret_cast<const char*>(order.data()), order.size()) != "little")
        fail("tensors stored big-endian (byteorder entry); only little-endian ones are read");
    }
    const auto pkl = zip.data(prefix + "data.pkl");
    if (pkl.size() > kMaxPickle)
      fail("data.pkl of " + std::to_string(pkl.size()) + " bytes is too large for a state dict");
    torch_detail::Unpickler unpickler(pkl, [this](const std::string& what) { fail(what); });
    const Value& root = unpickler.run();
    if (root.kind != Value::Dict) fail("data.pkl holds no dict of tensors");
    for (size_t k = 0; k + 1 < root.items.size(); k += 2) {
      const Value& key = *root.items[k];
      const Value& v = *root.items[k + 1];
      if (key.kind != Value::Str || v.kind != Value::Tensor) continue;
      tensors_.insert_or_assign(key.s, make_tensor(zip, prefix, key.s, v));
    }
  }

  Tensor make_tensor(const ZipArchive& zip, const std::string& prefix, const std::string& name,
                     const Value& v) const {
    const std::string where = "tensor '" + name + "': ";
    const std::string entry = prefix + "data/" + v.storage_key;
    if (!zip.find(entry)) fail(where + "no storage entry '" + entry + "'");
    const auto storage = zip.data(entry);
    const uint64_t esize = v.type->element_size;
    if (v.i < 0 || static_cast<uint64_t>(v.i) != storage.size() / esize ||
        storage.size() % esize != 0)
      fail(where + "storage '" + v.storage_key + "' holds " + std::to_string(storage.size()) +
           " bytes, the pickle says " + std::to_string(v.i) + " elements of " +
           std::to_string(esize));
    uint64_t numel = 1;
    for (const int64_t n : v.shape) {
      if (n < 0) fail(where + "negative size in its shape");
      if (n != 0 && numel > (uint64_t{1} << 60) / static_cast<uint64_t>(n))
        fail(where + "shape overflows 64 bits");
      numel *= static_cast<uint64_t>(n);
    }
    // Row-major and contiguous, as the kernels read it: each stride the product of the sizes
    // after it (torch's rule: a dimension of size 1, or a tensor without elements, may have any).
    uint64_t after = 1;
    for (size_t d = v.shape.size(); numel > 0 && d-- > 0;) {
      if (v.shape[d] > 1 && v.stride[d] != static_cast<int64_t>(after))
        fail(where + "not contiguous (strides not row-major); re-save it with .contiguous()");
      after *= static_cast<uint64_t>(v.shape[d]);
    }
    if (v.offset < 0) fail(where + "negative storage offset");
    const uint64_t off = static_cast<uint64_t>(v.offset);
    const uint64_t available = storage.size() / esize;
    if (off > available || numel > available - off)
      fail(where + "elements [" + std::to_string(off) + ", " + std::to_string(off + numel) +
           ") reach past its storage '" + v.storage_key + "' of " + std::to_string(available) +
           " elements");
    Tensor t;
    t.storage_type = v.type->name;
    t.dtype = v.type->dtype;
    t.shape = v.shape;
    t.data = storage.data() + off * esize;
    t.nbytes = numel * esize;
    return t;
  }

  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, Tensor> tensors_;
};

// Whether the file starts as a zip archive does (a local file header), as torch.save's do.
inline bool is_torch_zip(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char m[4] = {};
  const bool ok = std::fread(m, 1, 4, f) == 4;
  std::fclose(f);
  return ok && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4;
}

}  // namespace mamba

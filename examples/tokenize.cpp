// mamba-tokenize: text to GPT-NeoX (or any byte-level BPE) token ids, and back.
//
//   mamba-tokenize -m FILE_OR_DIR (-p TEXT | -f FILE) [--special] [--decode]
//
// FILE_OR_DIR is a tokenizer.json, a GGUF (a model or a vocab-only file) or a model directory
// holding a tokenizer.json. Encoding prints the ids on one line separated by single spaces;
// --decode reads ids (separated by white space) and prints the text they stand for.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "mamba/error.hpp"
#include "mamba/tokenizer/load_tokenizer.hpp"

namespace {

constexpr const char* kUsage =
    "usage: mamba-tokenize -m FILE_OR_DIR (-p TEXT | -f FILE) [--special] [--decode]\n"
    "\n"
    "  -m FILE_OR_DIR  tokenizer.json, GGUF model or vocab-only GGUF, or a model directory\n"
    "                  with a tokenizer.json\n"
    "  -p TEXT         the text to encode (with --decode: the ids)\n"
    "  -f FILE         read the text (with --decode: the ids) from FILE, byte for byte\n"
    "  --special       match special tokens such as <|endoftext|> written in the text\n"
    "                  (with --decode: keep them in the output; without, they are dropped)\n"
    "  --decode        ids in, text out\n"
    "  -h, --help      this help\n"
    "\n"
    "Encoding prints the ids on one line, separated by single spaces. Decoding prints the\n"
    "text followed by a newline.\n";

struct Args {
  std::string model, text, file;
  bool have_text = false, have_file = false, special = false, decode = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw mamba::ArgumentError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "-m" || arg == "--model") {
      a.model = value();
    } else if (arg == "-p" || arg == "--prompt") {
      a.text = value();
      a.have_text = true;
    } else if (arg == "-f" || arg == "--file") {
      a.file = value();
      a.have_file = true;
    } else if (arg == "--special") {
      a.special = true;
    } else if (arg == "--decode") {
      a.decode = true;
    } else {
      throw mamba::ArgumentError("unknown argument '" + arg + "' (see --help)");
    }
  }
  if (a.model.empty()) throw mamba::ArgumentError("no tokenizer given: -m FILE_OR_DIR");
  if (a.have_text == a.have_file)
    throw mamba::ArgumentError("give exactly one of -p TEXT and -f FILE");
  return a;
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw mamba::ArgumentError(path + ": is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw mamba::ArgumentError(path + ": cannot open the file");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) {
      throw mamba::ArgumentError("'" + word + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse_args(argc, argv);
    const mamba::Tokenizer tok = mamba::load_tokenizer(args.model);
    const std::string input = args.have_text ? args.text : read_file(args.file);
    std::string out;
    if (args.decode) {
      out = tok.decode(parse_ids(input), /*skip_special=*/!args.special);
    } else {
      for (const int32_t id : tok.encode(input, args.special)) {
        if (!out.empty()) out += ' ';
        out += std::to_string(id);
      }
    }
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  } catch (const mamba::Error& e) {
    std::cerr << "mamba-tokenize: " << e.what() << '\n';
  } catch (const std::exception& e) {
    std::cerr << "mamba-tokenize: " << e.what() << '\n';
  }
  return 1;
}

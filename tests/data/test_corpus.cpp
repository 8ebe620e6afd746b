// Corpus reading for tessera prepare: decompression, JSON Lines documents, input expansion.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include "data_test_util.hpp"
#include "io/data/corpus/documents.hpp"

namespace tessera {
namespace {

using testing::TempDir;
using testing::usage_error_message;

std::string gzip(std::string_view text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);  // gzip
  std::string out(deflateBound(&z, text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(std::string_view text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t size = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
  EXPECT_FALSE(ZSTD_isError(size));
  out.resize(size);
  return out;
}

std::string read_all(const std::filesystem::path& path) {
  ByteStream stream(path);
  std::string all;
  char block[1000];  // small reads: many calls per member
  while (const size_t n = stream.read(block, sizeof(block))) all.append(block, n);
  return all;
}

TEST(ByteStream, DecompressesGzipAndZstdIncludingConcatenatedMembers) {
  TempDir dir;
  const std::string first = testing::generated_text(300), second = testing::generated_text(41);
  testing::write_file(dir / "plain", first + second);
  testing::write_file(dir / "two.gz", gzip(first) + gzip(second));
  testing::write_file(dir / "two.zst", zstd(first) + zstd(second));
  testing::write_file(dir / "empty", "");
  EXPECT_EQ(read_all(dir / "plain"), first + second);
  EXPECT_EQ(read_all(dir / "two.gz"), first + second);
  EXPECT_EQ(read_all(dir / "two.zst"), first + second);
  EXPECT_EQ(read_all(dir / "empty"), "");
  EXPECT_EQ(ByteStream(dir / "two.gz").compression(), Compression::gzip);
  EXPECT_EQ(ByteStream(dir / "two.zst").compression(), Compression::zstd);
  EXPECT_EQ(ByteStream(dir / "plain").compression(), Compression::none);
}

TEST(ByteStream, DamagedOrTruncatedStreamsAreNamed) {
  TempDir dir;
  const std::string text = testing::generated_text(300);
  std::string flipped = gzip(text);
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
  testing::write_file(dir / "flipped.gz", flipped);
  const std::string gz = gzip(text), zs = zstd(text);
  testing::write_file(dir / "cut.gz", gz.substr(0, gz.size() - 20));
  testing::write_file(dir / "cut.zst", zs.substr(0, zs.size() - 20));
  for (const char* name : {"flipped.gz", "cut.gz", "cut.zst"}) {
    const std::string message = usage_error_message([&] { read_all(dir / name); });
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_NE(message.find("fetch it again"), std::string::npos) << message;
  }
  EXPECT_NE(usage_error_message([&] { ByteStream stream(dir / "none"); }).find("none"),
            std::string::npos);
}

TEST(Documents, JsonLinesGiveOneDocumentPerLine) {
  TempDir dir;
  const std::string lines =
      "{\"text\": \"first\\nline\", \"id\": 1}\n\n  \n{\"text\": \"caf\\u00e9\"}\r\n"
      "{\"body\": \"x\", \"text\": \"\"}\n{\"text\": \"last, no newline\"}";
  testing::write_file(dir / "a.jsonl.zst", zstd(lines));
  DocumentReader reader(dir / "a.jsonl.zst", "text");
  std::vector<std::string> texts;
  std::vector<uint64_t> line_numbers;
  std::string raw;
  while (reader.next(raw)) {
    texts.push_back(reader.text(raw));
    line_numbers.push_back(reader.line());
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"first\nline", "caf\u00e9", "", "last, no newline"}));
  EXPECT_EQ(line_numbers, (std::vector<uint64_t>{1, 4, 5, 6}));
  DocumentReader body(dir / "a.jsonl.zst", "body");
  ASSERT_TRUE(body.next(raw));
  EXPECT_NE(usage_error_message([&] {
              (void)body.text(raw);
            }).find("a.jsonl.zst line 1 has no string field \"body\"; pass --text-key"),
            std::string::npos);
}

TEST(Documents, PlainTextIsOneDocument) {
  TempDir dir;
  testing::write_file(dir / "a.txt.gz", gzip("one\n\ntwo\n"));
  DocumentReader reader(dir / "a.txt.gz", "text");
  std::string raw;
  ASSERT_TRUE(reader.next(raw));
  EXPECT_EQ(reader.text(raw), "one\n\ntwo\n");
  EXPECT_FALSE(reader.next(raw));
}

TEST(Documents, BadLinesAreNamedByFileAndLine) {
  TempDir dir;
  testing::write_file(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"open\n[1, 2]\n");
  DocumentReader reader(dir / "bad.jsonl", "text");
  std::string raw;
  ASSERT_TRUE(reader.next(raw));
  EXPECT_EQ(reader.text(raw), "ok");
  ASSERT_TRUE(reader.next(raw));
  EXPECT_NE(usage_error_message([&] {
              (void)reader.text(raw);
            }).find("bad.jsonl line 2 is not valid JSON"),
            std::string::npos);
  ASSERT_TRUE(reader.next(raw));
  EXPECT_NE(usage_error_message([&] {
              (void)reader.text(raw);
            }).find("bad.jsonl line 3 is JSON but not an object"),
            std::string::npos);
}

TEST(Inputs, DirectoriesAreWalkedInOrderAndListsRelativeToThemselves) {
  TempDir dir;
  std::filesystem::create_directories(dir / "corpus" / "sub");
  std::filesystem::create_directories(dir / "corpus" / ".cache");
  for (const char* name : {"corpus/b.txt", "corpus/a.jsonl", "corpus/sub/c.txt", "corpus/.hidden",
                           "corpus/.cache/x.txt", "more.txt"}) {
    testing::write_file(dir / name, "x");
  }
  testing::write_file(dir / "list.txt", "# extra inputs\nmore.txt\n\n");
  const auto files = expand_inputs({dir / "corpus"}, dir / "list.txt");
  EXPECT_EQ(files,
            (std::vector<std::filesystem::path>{dir / "corpus/a.jsonl", dir / "corpus/b.txt",
                                                dir / "corpus/sub/c.txt", dir / "more.txt"}));
  testing::write_file(dir / "broken.txt", "more.txt\nmissing.txt\n");
  EXPECT_NE(usage_error_message([&] {
              expand_inputs({}, dir / "broken.txt");
            }).find("missing.txt (line 2 of"),
            std::string::npos);
  EXPECT_NE(usage_error_message([&] { expand_inputs({}, {}); }).find("name no files"),
            std::string::npos);
  EXPECT_TRUE(is_json_lines("x/a.jsonl.gz"));
  EXPECT_TRUE(is_json_lines("a.ndjson.zst"));
  EXPECT_FALSE(is_json_lines("a.txt.gz"));
}

}  // namespace
}  // namespace tessera

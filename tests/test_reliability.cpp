// Issue 17 (docs/reliability.md): the edge checks that the bad-input corpus cannot reach from the
// command line: one YAML document per file, escaped error text, bounded file reads, checked
// products, and the inputs the fuzzers (tests/fuzz) found that hung the YAML reader.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "common/limits.hpp"
#include "common/presets.hpp"
#include "common/yaml_reader.hpp"

namespace {

using namespace scaleplan;

int config_error_line(const std::string& text) {
  try {
    YamlMap::parse(text, "t.yaml");
  } catch (const ConfigError& e) {
    return e.where().line;
  }
  return 0;
}

TEST(YamlDocuments, OneDocumentWithMarkersAndCommentsIsRead) {
  EXPECT_EQ(config_error_line("a: 1\n"), 0);
  EXPECT_EQ(config_error_line("---\na: 1\n"), 0);
  EXPECT_EQ(config_error_line("# c\n--- # c\na: 1\n...\n# end\n"), 0);
  EXPECT_EQ(config_error_line("%YAML 1.2\n---\na: 1\n"), 0);
  EXPECT_EQ(config_error_line("a: |\n  --- not a marker (indented)\n"), 0);
}

TEST(YamlDocuments, ASecondDocumentIsRefusedAtItsMarker) {
  EXPECT_EQ(config_error_line("a: 1\n---\nb: 2\n"), 2);
  EXPECT_EQ(config_error_line("a: 1\n...\nb: 2\n"), 2);
  EXPECT_EQ(config_error_line("a: 1\n...\n---\n"), 2);
  EXPECT_EQ(config_error_line("a: 1\n--- {b: 2}\n"), 2);
  try {
    YamlMap::parse("a: 1\n---\nb: 2\n", "t.yaml");
    ADD_FAILURE() << "a second document was read";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.yaml:2:1: a second YAML document"), std::string::npos) << e.what();
  }
}

// Found by tests/fuzz (fuzz_*_yaml, -timeout=5): yaml-cpp 0.7's LoadAll looped forever on these
// malformed second documents. Each must now be answered (read or refused) at once.
TEST(YamlDocuments, FuzzFoundInputsThatHungLoadAllAreAnswered) {
  const std::vector<std::string> inputs = {
    // fuzz_cluster_yaml
    std::string(", b2gb\n"
      "node:2\n"
      "  gpu~s: 8\n"
      "  intra: {kindin vw_GBps: 150}\n"
      "  host_memer_gpu: 1emer_gpu: 101\n"
      "", 89),
    // fuzz_device_yaml
    std::string(", a device without fp32 peak\n"
      "name: no-fp32-gpu\n"
      "peak\x01""\x00""\x00""\x00""\x00""\x00""\x00""B_tflops:\n"
      "  fp32: 1\n"
      "  bf16: 300\n"
      "hbm_GiB: 80\n"
      "hbm_bw_GBps: 2000\n"
      "", 120),
    // fuzz_model_yaml
    std::string("# Llama 3 8B. Source: Llama Team 2024 \"The Llama 3 Herd of Models\" (arXiv 2407.21783), Table 3\n"
      "# (layers 32, model dimension 4096, FFN dimension 14336, attention heads 32, key/value heads 8, SwiGLUv\n"
      " ,#ocabulary size 128,000, RoPE theta 500,000) and sec. 3.2 (GQA with 8 KV heads, 128K-token vocabulary)\n"
      "# and sec. 3.4.1 (pre-training sequence length 8K).\n"
      "name: llama3-8b\n"
      "layers: 32              # Table 3 layers# Mixtral 8x7B. Source:\n"
      "hidden: 4096            # Table 3 model dimension\n"
      "heads: 3 2", 496),
    // fuzz_plan_yaml
    std::string(",s\xdf""", 3),
  };
  ASSERT_EQ(inputs.size(), 4u);
  for (const auto& text : inputs) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      YamlMap::parse(text, "fuzz.yaml");
    } catch (const ConfigError&) {
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  }
}

TEST(ErrorText, ControlBytesAreEscapedAndLongTextCut) {
  EXPECT_EQ(printable("a\nb\tc\x1b[31m\x01"), "a\\nb\\tc\\x1b[31m\\x01");
  EXPECT_EQ(printable(std::string(1000, 'x'), 10), "xxxxxxxxxx...");
  const ConfigError e({"f.yaml", 3, 4}, "name", "bad 'line one\nline two'");
  EXPECT_EQ(std::string(e.what()), "f.yaml:3:4: field 'name': bad 'line one\\nline two'");
  const PlanError p("tp", "got '\x7f'");
  EXPECT_EQ(std::string(p.what()), "plan key 'tp': got '\\x7f'");
}

TEST(BoundedReads, DevicesFifosAndFoldersAreRefused) {
  for (const char* path : {"/dev/zero", "/dev/null", "/"}) {
    try {
      (void)read_file(path);
      ADD_FAILURE() << path << " was read";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
  }
  const std::string fifo = ::testing::TempDir() + "/scaleplan-test-fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW((void)read_file(fifo), UsageError);  // refused before open(), which would block
  std::remove(fifo.c_str());
}

TEST(Limits, CheckedProducts) {
  long long r = 0;
  EXPECT_TRUE(limits::mul_within(1LL << 12, 1LL << 12, limits::kMaxGpus, &r));
  EXPECT_EQ(r, 1LL << 24);
  EXPECT_FALSE(limits::mul_within(1LL << 12, (1LL << 12) + 1, limits::kMaxGpus, &r));
  EXPECT_FALSE(limits::mul_within(1LL << 40, 1LL << 40, limits::kMaxTokensPerStep, &r));  // wraps in 64 bits
  EXPECT_EQ(limits::range_str(1, 16), "[1, 16]");
}

}  // namespace

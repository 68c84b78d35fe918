// configs/: every preset loads, the required presets of issue 2 exist, model sizes agree with their
// nominal size, and cluster/device values are physically sensible.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <string>

#include "common/errors.hpp"
#include "common/presets.hpp"
#include "hardware/cluster.hpp"
#include "hardware/device.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;

std::string load_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Presets, EveryKindHasPresets) {
  for (const char* kind : {"models", "clusters", "devices", "plans"}) EXPECT_FALSE(preset_names(kind).empty()) << kind;
}

TEST(Presets, EveryModelLoads) {
  for (const auto& n : preset_names("models")) EXPECT_EQ(load_error([&] { model::load_model(n); }), "") << n;
}
TEST(Presets, EveryClusterLoads) {
  for (const auto& n : preset_names("clusters")) EXPECT_EQ(load_error([&] { hw::load_cluster(n); }), "") << n;
}
TEST(Presets, EveryDeviceLoads) {
  for (const auto& n : preset_names("devices")) EXPECT_EQ(load_error([&] { hw::load_device(n); }), "") << n;
}
TEST(Presets, EveryPlanLoads) {
  for (const auto& n : preset_names("plans")) EXPECT_EQ(load_error([&] { strategies::load_plan(n); }), "") << n;
}

TEST(Presets, ModelNameMatchesFileName) {
  for (const auto& n : preset_names("models")) {
    const model::ModelSpec m = model::load_model(n);
    EXPECT_EQ(m.name, n);
  }
}

// Computed parameter count within 10% of the nominal size the file states.
TEST(Presets, ModelSizesMatchNominal) {
  for (const auto& n : preset_names("models")) {
    const model::ModelSpec m = model::load_model(n);
    if (m.params_nominal <= 0) continue;
    const double rel = std::fabs(m.total_params() - m.params_nominal) / m.params_nominal;
    EXPECT_LE(rel, 0.10) << n << ": computed " << m.total_params() << " vs nominal " << m.params_nominal;
  }
}

TEST(Presets, ModelShapesAreConsistent) {
  for (const auto& n : preset_names("models")) {
    const model::ModelSpec m = model::load_model(n);
    EXPECT_EQ(m.hidden % m.heads, 0) << n;
    EXPECT_EQ(m.heads % m.kv_heads, 0) << n;
    EXPECT_GT(m.layers, 0) << n;
    EXPECT_GT(m.vocab, 0) << n;
    EXPECT_GT(m.seq, 0) << n;
    EXPECT_GT(m.ffn, 0) << n;
  }
}

// ---------------------------------------------------------------- required presets (issue 2)
TEST(Required, Devices) {
  // Issue 2 names: V100-32GB, A100-40GB, A100-80GB, H100-SXM-80GB, H200-141GB (as aliases).
  struct {
    const char* alias;
    double hbm_gib;
  } want[] = {{"V100-32GB", 32}, {"A100-40GB", 40}, {"A100-80GB", 80}, {"H100-SXM-80GB", 80}, {"H200-141GB", 140.4}};
  for (const auto& w : want) {
    hw::Device d;
    ASSERT_EQ(load_error([&] { d = hw::load_device(w.alias); }), "") << w.alias;
    EXPECT_NEAR(d.hbm_bytes / (1024.0 * 1024 * 1024), w.hbm_gib, 1.0) << w.alias;
    EXPECT_GT(d.peak(hw::Dtype::fp32), 0) << w.alias;
    EXPECT_GT(d.peak(hw::Dtype::fp16), 0) << w.alias;
    EXPECT_GT(d.hbm_bw_Bps, 0) << w.alias;
  }
}

TEST(Required, DevicePrecisions) {
  EXPECT_EQ(hw::load_device("V100-32GB").peak(hw::Dtype::bf16), 0);  // Volta: no bf16
  EXPECT_EQ(hw::load_device("A100-80GB").peak(hw::Dtype::fp8), 0);   // Ampere: no fp8
  EXPECT_GT(hw::load_device("H100-SXM-80GB").peak(hw::Dtype::fp8), 0);
  EXPECT_DOUBLE_EQ(hw::load_device("A100-80GB").peak(hw::Dtype::bf16), 312e12);  // datasheet dense
  EXPECT_DOUBLE_EQ(hw::load_device("V100-32GB").peak(hw::Dtype::fp16), 125e12);
}

TEST(Required, Clusters) {
  struct {
    const char* name;
    const char* device;
    int gpus_per_node;
  } want[] = {{"dgx1-v100", "v100-32gb", 8},        {"dgx2-v100", "v100-32gb", 16},     {"dgx-a100-40gb", "a100-40gb", 8},
              {"selene-a100", "a100-80gb", 8},      {"dgx-h100", "h100-sxm-80gb", 8},   {"meta-h100-roce", "h100-sxm-80gb", 8}};
  for (const auto& w : want) {
    ASSERT_TRUE(has_preset("clusters", w.name)) << w.name;
    const hw::Cluster c = hw::load_cluster(w.name);
    EXPECT_EQ(c.device.name, w.device) << w.name;
    EXPECT_EQ(c.gpus_per_node, w.gpus_per_node) << w.name;
    EXPECT_GT(c.intra.bw_Bps, 0) << w.name;
    EXPECT_GT(c.net.nic_bw_Bps, 0) << w.name;
    EXPECT_GE(c.net.oversubscription, 1) << w.name;
    EXPECT_GT(c.host.memory_bytes, 0) << w.name;
    EXPECT_GT(c.host.pcie_Bps, 0) << w.name;
    EXPECT_GT(c.price_usd_per_gpu_hour, 0) << w.name;
    EXPECT_GT(c.power_W_per_gpu, 0) << w.name;
  }
}

TEST(Required, ClusterTopologies) {
  EXPECT_EQ(hw::load_cluster("selene-a100").intra.bw_Bps, 300e9);  // NVSwitch 600 GB/s bidirectional
  EXPECT_EQ(hw::load_cluster("selene-a100").net.nic_bw_Bps, 200e9 / 8);  // HDR 200 Gb/s per GPU
  EXPECT_EQ(hw::load_cluster("dgx-h100").net.topology, hw::Topology::rail_optimized);
  EXPECT_EQ(hw::load_cluster("dgx-h100").net.nic_bw_Bps, 400e9 / 8);
  const hw::Cluster meta = hw::load_cluster("meta-h100-roce");
  EXPECT_EQ(meta.net.topology, hw::Topology::clos);
  EXPECT_EQ(meta.net.pod_gpus, 3072);
  EXPECT_EQ(meta.net.oversubscription, 7);
  EXPECT_EQ(meta.net.nic_bw_Bps, 400e9 / 8);
  EXPECT_EQ(hw::load_cluster("dgx1-v100").intra.kind, hw::IntraKind::nvlink_mesh);
  EXPECT_EQ(hw::load_cluster("dgx2-v100").intra.kind, hw::IntraKind::nvswitch);
}

TEST(Required, Models) {
  const char* want[] = {"gpt3-125m", "gpt3-350m", "gpt3-760m",  "gpt3-1.3b",   "gpt3-2.7b",    "gpt3-6.7b", "gpt3-13b",
                        "gpt3-175b", "llama2-7b", "llama2-13b", "llama2-70b",  "llama3-8b",    "llama3-70b", "llama3-405b",
                        "opt-175b",  "bloom-176b", "mixtral-8x7b", "gpt4-moe-1.8t", "gpt-tiny", "gpt-small"};
  for (const char* n : want) EXPECT_TRUE(has_preset("models", n)) << n;
}

// Every model.name of the published runs file has a preset of the same shape.
TEST(Required, EveryPublishedRunModel) {
  const validation::RunsFile f = validation::load_runs("");
  ASSERT_FALSE(f.runs.empty());
  std::set<std::string> names;
  for (const auto& r : f.runs) names.insert(r.model.name);
  for (const auto& l : f.layer_timings) names.insert(l.model.name);
  for (const auto& n : names) {
    ASSERT_TRUE(has_preset("models", n)) << n;
    const model::ModelSpec p = model::load_model(n);
    for (const auto& r : f.runs) {
      if (r.model.name != n) continue;
      EXPECT_EQ(p.layers, r.model.layers) << n << " (" << r.id << ")";
      EXPECT_EQ(p.hidden, r.model.hidden) << n << " (" << r.id << ")";
      EXPECT_EQ(p.heads, r.model.heads) << n << " (" << r.id << ")";
      EXPECT_EQ(p.ffn, r.model.ffn) << n << " (" << r.id << ")";
      EXPECT_EQ(p.vocab, r.model.vocab) << n << " (" << r.id << ")";
    }
  }
  for (const char* n : {"gpt-1.7b", "gpt-1008b", "gpt-22b", "gpt-175b", "gpt-530b", "gpt-1t"}) EXPECT_TRUE(names.count(n)) << n;
}

TEST(Required, MegatronPlanPreset) { EXPECT_TRUE(has_preset("plans", "megatron-gpt3-175b")); }

// ---------------------------------------------------------------- name resolution
TEST(Resolution, CaseAndSeparatorInsensitive) {
  EXPECT_EQ(model::load_model("GPT3-175B").name, "gpt3-175b");
  EXPECT_EQ(model::load_model("gpt3_175b").name, "gpt3-175b");
  EXPECT_EQ(hw::load_cluster("SELENE_A100").name, "selene-a100");
}

TEST(Resolution, UnknownPresetIsAUsageErrorListingPresets) {
  try {
    model::load_model("gpt5-100t");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("unknown model preset 'gpt5-100t'"), std::string::npos) << w;
    EXPECT_NE(w.find("gpt3-175b"), std::string::npos) << w;  // lists the known names
  }
}

TEST(Resolution, ParseErrorsCarryTheLocation) {
  try {
    model::parse_model("layers: 2\nhidden: -64\nheads: 4\nvocab: 256\nseq: 64\n", "m.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.where().file, "m.yaml");
    EXPECT_EQ(e.where().line, 2);
    EXPECT_EQ(e.where().column, 9);
    EXPECT_EQ(e.field(), "hidden");
    EXPECT_NE(e.rule().find("> 0"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).rfind("m.yaml:2:9: ", 0), 0u) << e.what();
  }
}

}  // namespace

// Per-class host kernel rates (issue 8: `scaleplan calibrate` writes them for the executor's op
// model): read in GB/s, unset classes stay 0 (the streaming rate), an unknown class is a typed error.
TEST(Configs, DeviceKernelClassRates) {
  const std::string base =
      "name: host\npeak_tflops: {fp32: 0.03}\nhbm_GiB: 8\nhbm_bw_GBps: 5\nefficiency:\n  mem_bw: 1.0\n  kernel_overhead_us: 0.5\n";
  const hw::Device d = hw::parse_device(base + "  kernel_GBps: {copy: 50, gelu: 0.5}\n", "host.yaml");
  EXPECT_DOUBLE_EQ(d.eff.kernel_Bps[static_cast<int>(hw::KernelClass::copy)], 50e9);
  EXPECT_DOUBLE_EQ(d.eff.kernel_Bps[static_cast<int>(hw::KernelClass::softmax)], 0.0);
  EXPECT_DOUBLE_EQ(d.kernel_time(hw::KernelClass::gelu, 1e9), 2.0 + 0.5e-6);
  EXPECT_DOUBLE_EQ(d.kernel_time(hw::KernelClass::softmax, 5e9), 1.0 + 0.5e-6);  // unset: hbm_bw x mem_bw
  EXPECT_THROW(hw::parse_device(base + "  kernel_GBps: {tanh: 1}\n", "host.yaml"), ConfigError);
}

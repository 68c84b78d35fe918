// The B200 device and DGX B200 cluster presets (configs/devices/b200.yaml, configs/clusters/dgx-b200.yaml)
// load with their sourced numbers: dense peaks of the HGX B200 at 1,000 W (not the sparsity figures),
// 180 GB HBM3e (nvidia-smi 183359 MiB) at 7.67 TB/s measured (8 TB/s in the spec), NVLink 5 at 1.8 TB/s bidirectional, 8 x 400 Gb/s NICs, 14.3 kW per node.
#include <gtest/gtest.h>

#include "common/presets.hpp"
#include "hardware/cluster.hpp"
#include "hardware/device.hpp"

namespace {

using namespace scaleplan;

TEST(B200, DeviceLoadsWithDensePeaks) {
  const hw::Device d = hw::load_device("b200");
  EXPECT_EQ(d.name, "b200");
  EXPECT_DOUBLE_EQ(d.peak(hw::Dtype::bf16), 2250e12);  // HGX B200 "BF16 | 2250 | 4500" (dense | sparse)
  EXPECT_DOUBLE_EQ(d.peak(hw::Dtype::fp16), 2250e12);
  EXPECT_DOUBLE_EQ(d.peak(hw::Dtype::fp8), 4500e12);   // "FP8 | 4500 | 9000"
  EXPECT_DOUBLE_EQ(d.peak(hw::Dtype::tf32), 1100e12);
  EXPECT_DOUBLE_EQ(d.peak(hw::Dtype::fp32), 80e12);
  EXPECT_NEAR(d.hbm_bytes, 183359.0 * 1024 * 1024, 0.001 * 180e9);  // nvidia-smi "183359MiB" (NVIDIA's "180 GB")
  EXPECT_DOUBLE_EQ(d.hbm_bw_Bps, 7672e9);  // 7680-bit bus x 3996 MHz x 2 (pytorch/ao#4002), not the spec's 8 TB/s
  EXPECT_DOUBLE_EQ(d.tdp_W, 1000);
  // Efficiencies: the fitted H100 values, gemm_max scaled by the published B200 / H200 GEMM ratio
  // (1420.40 / 652.40 TFLOPS on one sweep, against the dense-peak ratio 2250 / 989.4): not the
  // hw::Efficiency defaults, which no B200 measurement supported.
  const hw::Device h100 = hw::load_device("h100-sxm-80gb");
  EXPECT_NEAR(d.eff.gemm_max, h100.eff.gemm_max * (1420.40 / 652.40) / (2250 / 989.4), 0.001);
  EXPECT_LT(d.eff.gemm_max, hw::Efficiency{}.gemm_max);
  EXPECT_DOUBLE_EQ(d.eff.flash_attention, h100.eff.flash_attention);
  EXPECT_DOUBLE_EQ(d.eff.mem_bw, h100.eff.mem_bw);
  EXPECT_DOUBLE_EQ(d.eff.gemm_half_flop, h100.eff.gemm_half_flop);
  // The runs files' hardware.gpu spelling resolves by alias.
  EXPECT_EQ(hw::load_device("B200").name, "b200");
}

TEST(B200, DgxB200ClusterLoads) {
  ASSERT_TRUE(has_preset("clusters", "dgx-b200"));
  const hw::Cluster c = hw::load_cluster("dgx-b200");
  EXPECT_EQ(c.device.name, "b200");
  EXPECT_EQ(c.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(c.intra.bw_Bps, 900e9);         // 14.4 TB/s aggregate / 8 GPUs / 2 directions
  EXPECT_DOUBLE_EQ(c.net.nic_bw_Bps, 400e9 / 8);   // one ConnectX-7 400 Gb/s per GPU
  EXPECT_DOUBLE_EQ(c.power_W_per_gpu, 1788);        // 14.3 kW / 8
  EXPECT_DOUBLE_EQ(c.price_usd_per_gpu_hour, 0);    // no public price: unset
}

}  // namespace

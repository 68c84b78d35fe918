#include "hardware/device.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/errors.hpp"
#include "common/presets.hpp"
#include "common/text_match.hpp"
#include "common/yaml_reader.hpp"

namespace scaleplan::hw {

const char* dtype_name(Dtype d) {
  static const char* names[] = {"fp32", "tf32", "fp16", "bf16", "fp8"};
  return names[static_cast<int>(d)];
}

double Device::gemm_time(double flops, double bytes, Dtype d) const {
  if (flops <= 0) return 0;
  const double eff_f = eff.gemm_max * flops / (flops + eff.gemm_half_flop);
  const double t_compute = flops / (peak(d) * eff_f);
  const double t_mem = bytes / (hbm_bw_Bps * eff.mem_bw);
  return std::max(t_compute, t_mem) + eff.kernel_overhead_s;
}

const char* kernel_class_name(KernelClass k) {
  static const char* names[] = {"copy", "simple", "gelu", "layernorm", "softmax", "optimizer",
                                "gelu_bwd", "layernorm_bwd", "softmax_bwd", "alloc", "cross_entropy"};
  return names[static_cast<int>(k)];
}

double Device::kernel_time(KernelClass k, double bytes) const {
  // An unmeasured backward (or alloc) class runs at its forward (copy) class's rate: files written
  // by an older `calibrate` keep their meaning.
  static const KernelClass fallback[kNumKernelClasses] = {
      KernelClass::copy,      KernelClass::simple,    KernelClass::gelu,      KernelClass::layernorm, KernelClass::softmax,
      KernelClass::optimizer, KernelClass::gelu,      KernelClass::layernorm, KernelClass::softmax,   KernelClass::copy,
      KernelClass::softmax};
  double r = eff.kernel_Bps[static_cast<int>(k)];
  if (r <= 0) r = eff.kernel_Bps[static_cast<int>(fallback[static_cast<int>(k)])];
  const double rate = r > 0 ? r : hbm_bw_Bps * eff.mem_bw;
  return std::max(0.0, bytes) / rate + eff.kernel_overhead_s;
}

double Device::flash_time(double flops, Dtype d, bool flash2, bool backward) const {
  if (flops <= 0) return 0;
  const double f2 = backward && eff.flash2_attention_bwd > 0 ? eff.flash2_attention_bwd : eff.flash2_attention;
  const double f = flash2 && f2 > 0 ? f2 : eff.flash_attention;
  return flops / (peak(d) * f) + eff.kernel_overhead_s;
}

Device parse_device(const std::string& text, const std::string& file) {
  YamlMap y = YamlMap::parse(text, file);
  y.check_keys({"name", "aliases", "peak_tflops", "hbm_GiB", "hbm_bw_GBps", "tdp_W", "efficiency"});
  Device d;
  d.name = y.str("name");
  d.aliases = y.str_list_or("aliases");
  YamlMap p = y.map("peak_tflops");
  p.check_keys({"fp32", "tf32", "fp16", "bf16", "fp8"});
  const char* keys[] = {"fp32", "tf32", "fp16", "bf16", "fp8"};
  for (int i = 0; i < kNumDtypes; ++i) d.peak_flops[i] = p.num_or(keys[i], 0, Bound::non_negative) * 1e12;
  if (d.peak_flops[static_cast<int>(Dtype::fp32)] <= 0) p.fail("fp32", "must be > 0 (every GPU computes in fp32)");
  // TF32 absent (V100): fp32 matmuls run at the plain fp32 rate. Other missing precisions stay 0
  // and plans asking for them are rejected by resolve_plan.
  if (d.peak_flops[static_cast<int>(Dtype::tf32)] <= 0) d.peak_flops[static_cast<int>(Dtype::tf32)] = d.peak_flops[0];
  d.hbm_bytes = y.num("hbm_GiB") * 1024.0 * 1024.0 * 1024.0;
  d.hbm_bw_Bps = y.num("hbm_bw_GBps") * 1e9;
  d.tdp_W = y.num_or("tdp_W", 0, Bound::non_negative);
  if (auto e = y.opt_map("efficiency")) {
    e->check_keys({"gemm_max", "gemm_half_flop", "mem_bw", "flash_attention", "flash2_attention", "flash2_attention_bwd", "kernel_overhead_us", "overlap_slowdown", "kernel_GBps",
                   "flash_triton_fwd_vs_flash2", "flash_triton_bwd_vs_flash2"});
    d.eff.gemm_max = e->num_or("gemm_max", d.eff.gemm_max, Bound::fraction);
    d.eff.gemm_half_flop = e->num_or("gemm_half_flop", d.eff.gemm_half_flop, Bound::non_negative);
    d.eff.mem_bw = e->num_or("mem_bw", d.eff.mem_bw, Bound::fraction);
    d.eff.flash_attention = e->num_or("flash_attention", d.eff.flash_attention, Bound::fraction);
    d.eff.flash2_attention = e->num_or("flash2_attention", d.eff.flash2_attention, Bound::fraction);
    d.eff.flash2_attention_bwd = e->num_or("flash2_attention_bwd", d.eff.flash2_attention_bwd, Bound::fraction);
    d.eff.flash_triton_fwd_vs_flash2 = e->num_or("flash_triton_fwd_vs_flash2", d.eff.flash_triton_fwd_vs_flash2, Bound::positive);
    d.eff.flash_triton_bwd_vs_flash2 = e->num_or("flash_triton_bwd_vs_flash2", d.eff.flash_triton_bwd_vs_flash2, Bound::positive);
    d.eff.overlap_slowdown = e->num_or("overlap_slowdown", d.eff.overlap_slowdown, Bound::non_negative);
    d.eff.kernel_overhead_s = e->num_or("kernel_overhead_us", d.eff.kernel_overhead_s * 1e6, Bound::non_negative) * 1e-6;
    if (auto k = e->opt_map("kernel_GBps")) {  // per-class host kernel rates (scaleplan calibrate)
      k->check_keys({"copy", "simple", "gelu", "layernorm", "softmax", "optimizer", "gelu_bwd", "layernorm_bwd", "softmax_bwd",
                     "alloc", "cross_entropy"});  // kernel_class_name order
      for (int i = 0; i < kNumKernelClasses; ++i)
        d.eff.kernel_Bps[i] = k->num_or(kernel_class_name(static_cast<KernelClass>(i)), 0, Bound::non_negative) * 1e9;
    }
  }
  return d;
}

Device load_device(const std::string& spec) {
  // Aliases: scan the embedded devices for a matching alias first.
  for (const auto& name : preset_names("devices")) {
    if (name == spec) break;
    ConfigText t = load_config_text("devices", name);
    Device d = parse_device(t.text, t.file);
    for (const auto& a : d.aliases) {
      std::string x = a, s = spec;
      std::transform(x.begin(), x.end(), x.begin(), ::tolower);
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      if (x == s) return d;
    }
  }
  ConfigText t = load_config_text("devices", spec);
  return parse_device(t.text, t.file);
}

std::string device_named_in(const std::string& text) {
  if (text.empty()) return "";
  try {
    return load_device(text).name;
  } catch (const UsageError&) {
  }
  const std::string t = lower(text);
  std::string family;
  for (const char* f : {"gb200", "b200", "h200", "h100", "a100", "v100"})
    if (has_word(t, f)) {
      family = f;
      break;
    }
  if (family.empty()) return "";
  // "<N>GB" / "<N> GB" as the memory size, if the text gives one.
  double gb = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(t[i])) || (i > 0 && std::isalnum(static_cast<unsigned char>(t[i - 1])))) continue;
    std::size_t j = i;
    while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j;
    std::size_t k = j;
    while (k < t.size() && t[k] == ' ') ++k;
    if (t.compare(k, 2, "gb") == 0) {
      gb = std::stod(t.substr(i, j - i));
      break;
    }
  }
  std::string best, own;
  double best_gap = 1e300;
  for (const std::string& name : preset_names("devices")) {
    const ConfigText c = load_config_text("devices", name);
    const Device d = parse_device(c.text, c.file);
    // A preset belongs to the family when its name starts with it (gb200 is not a b200).
    if (name.rfind(family, 0) != 0) continue;
    for (const std::string& a : d.aliases)
      if (lower(a) == family) own = name;
    const double gap = gb > 0 ? std::fabs(d.hbm_bytes / (1024.0 * 1024 * 1024) - gb) : 0;
    if (best.empty() || gap < best_gap) best = name, best_gap = gap;
  }
  return gb > 0 || own.empty() ? best : own;
}

}  // namespace scaleplan::hw

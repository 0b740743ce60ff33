// LayerNorm over the last axis, float32, CPU: an MXNet 1.9 extension-library operator
// (include/mxnet/lib_api.h) registered as `_gluonbert_layer_norm`.
//
// Why: MXNet 1.9.1's native CPU LayerNorm backward reduces through its generic broadcast
// kernels and takes ~18x PyTorch's time at BERT sizes (1,024 rows x 384 or 768); oneDNN's
// kernel is only chosen for >= 1,024 rows *and* >= 1,024 columns. Here each row's statistics
// and gradients stay in cache, and gamma/beta gradients are summed per thread in a fixed
// order (deterministic for a given thread count).
//
// Inputs (data, gamma, beta), output out, like LayerNorm(axis=-1, output_mean_var=False).
// The backward recomputes the row mean and 1/std instead of storing them. Gradients are
// always written, never added: the Python side feeds gamma and beta through an identity op
// so that accumulation into parameter gradients (grad_req='add') stays with MXNet.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "lib_api.h"

using mxnet::ext::MXReturnValue;
using mxnet::ext::MXTensor;
using mxnet::ext::OpResource;
using Attrs = std::unordered_map<std::string, std::string>;

namespace {

// eps from the attributes (MXNet passes strings); false when it is not a positive number.
bool ParseEps(const Attrs& attrs, float* eps) {
  auto it = attrs.find("eps");
  if (it == attrs.end()) {
    *eps = 1e-5f;  // MXNet LayerNorm's default
    return true;
  }
  char* end = nullptr;
  const double value = std::strtod(it->second.c_str(), &end);
  *eps = static_cast<float>(value);
  return end != it->second.c_str() && *end == '\0' && value > 0 && std::isfinite(value);
}

// mean and 1/sqrt(var + eps) of one row, two passes (as MXNet's kernel) for accuracy.
inline void RowStats(const float* x, int64_t cols, float eps, float* mean, float* rstd) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < cols; ++j) sum += x[j];
  const float mu = sum / cols;
  float sq = 0.f;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < cols; ++j) sq += (x[j] - mu) * (x[j] - mu);
  *mean = mu;
  *rstd = 1.f / std::sqrt(sq / cols + eps);
}

MXReturnValue Forward(const Attrs& attrs, std::vector<MXTensor>* inputs,
                      std::vector<MXTensor>* outputs, const OpResource&) {
  MXTensor& data = (*inputs)[0];
  const float* x = data.data<float>();
  const float* gamma = (*inputs)[1].data<float>();
  const float* beta = (*inputs)[2].data<float>();
  float* y = (*outputs)[0].data<float>();
  const int64_t cols = data.shape.back();
  const int64_t rows = cols ? data.size() / cols : 0;
  float eps;
  ParseEps(attrs, &eps);  // validated by ParseAttrs
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    float* yi = y + i * cols;
    float mean, rstd;
    RowStats(xi, cols, eps, &mean, &rstd);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) yi[j] = (xi[j] - mean) * rstd * gamma[j] + beta[j];
  }
  return MXReturnValue::MX_SUCCESS;
}

// inputs: (d_out, data, gamma, beta, out); outputs: (d_data, d_gamma, d_beta)
MXReturnValue Backward(const Attrs& attrs, std::vector<MXTensor>* inputs,
                       std::vector<MXTensor>* outputs, const OpResource& res) {
  const float* dy = (*inputs)[0].data<float>();
  MXTensor& data = (*inputs)[1];
  const float* x = data.data<float>();
  const float* gamma = (*inputs)[2].data<float>();
  float* dx = (*outputs)[0].data<float>();
  float* dgamma = (*outputs)[1].data<float>();
  float* dbeta = (*outputs)[2].data<float>();
  const int64_t cols = data.shape.back();
  const int64_t rows = cols ? data.size() / cols : 0;
  float eps;
  ParseEps(attrs, &eps);  // validated by ParseAttrs
  // Per-thread partial sums of d_gamma and d_beta, (slots, 2, cols). The runtime may start a
  // smaller team than asked for (OMP_DYNAMIC, OMP_THREAD_LIMIT, nesting): the `omp for` below
  // still covers every row, unused slots stay zero, and the slots are summed in a fixed order.
  const int slots = omp_get_max_threads();
  float* partial = static_cast<float*>(res.alloc_cpu(sizeof(float) * slots * 2 * cols));
  for (int64_t k = 0; k < int64_t(slots) * 2 * cols; ++k) partial[k] = 0.f;
#pragma omp parallel num_threads(slots)
  {
    float* pg = partial + int64_t(omp_get_thread_num()) * 2 * cols;
    float* pb = pg + cols;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* xi = x + i * cols;
      const float* dyi = dy + i * cols;
      float* dxi = dx + i * cols;
      float mean, rstd;
      RowStats(xi, cols, eps, &mean, &rstd);
      float sum_g = 0.f, sum_gx = 0.f;  // sums of dy*gamma and dy*gamma*xhat over the row
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < cols; ++j) {
        const float xhat = (xi[j] - mean) * rstd;
        const float g = dyi[j] * gamma[j];
        sum_g += g;
        sum_gx += g * xhat;
        pg[j] += dyi[j] * xhat;
        pb[j] += dyi[j];
      }
      const float mean_g = sum_g / cols, mean_gx = sum_gx / cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) {
        const float xhat = (xi[j] - mean) * rstd;
        dxi[j] = rstd * (dyi[j] * gamma[j] - mean_g - xhat * mean_gx);
      }
    }
  }
  for (int64_t j = 0; j < cols; ++j) {
    float g = 0.f, b = 0.f;
    for (int t = 0; t < slots; ++t) {
      g += partial[int64_t(t) * 2 * cols + j];
      b += partial[int64_t(t) * 2 * cols + cols + j];
    }
    dgamma[j] = g;
    dbeta[j] = b;
  }
  return MXReturnValue::MX_SUCCESS;
}

MXReturnValue ParseAttrs(const Attrs& attrs, int* num_in, int* num_out) {
  auto axis = attrs.find("axis");
  if (axis != attrs.end() && axis->second != "-1") {
    MX_ERROR_MSG << "_gluonbert_layer_norm normalizes the last axis only (axis=-1); got axis="
                 << axis->second;
    return MXReturnValue::MX_FAIL;
  }
  float eps;
  if (!ParseEps(attrs, &eps)) {
    MX_ERROR_MSG << "_gluonbert_layer_norm: eps must be a positive number; got "
                 << attrs.at("eps");
    return MXReturnValue::MX_FAIL;
  }
  *num_in = 3;
  *num_out = 1;
  return MXReturnValue::MX_SUCCESS;
}

MXReturnValue InferType(const Attrs&, std::vector<int>* in_types, std::vector<int>* out_types) {
  for (size_t i = 0; i < in_types->size(); ++i) {
    if ((*in_types)[i] == -1) (*in_types)[i] = mxnet::ext::kFloat32;  // not inferred yet
    if ((*in_types)[i] != mxnet::ext::kFloat32) {
      MX_ERROR_MSG << "_gluonbert_layer_norm supports float32 only; input " << i
                   << " has dtype code " << (*in_types)[i];
      return MXReturnValue::MX_FAIL;
    }
  }
  (*out_types)[0] = mxnet::ext::kFloat32;
  return MXReturnValue::MX_SUCCESS;
}

MXReturnValue InferShape(const Attrs&, std::vector<std::vector<unsigned int>>* in_shapes,
                         std::vector<std::vector<unsigned int>>* out_shapes) {
  const auto& data = (*in_shapes)[0];
  if (data.empty()) return MXReturnValue::MX_SUCCESS;  // not known yet: output unknown too
  for (int k = 1; k <= 2; ++k) {
    auto& param = (*in_shapes)[k];
    if (param.empty()) param = {data.back()};  // gamma and beta inferred from the data
    if (param.size() != 1 || param[0] != data.back()) {
      MX_ERROR_MSG << "_gluonbert_layer_norm: gamma and beta must have shape (" << data.back()
                   << ",), the size of the last data axis";
      return MXReturnValue::MX_FAIL;
    }
  }
  (*out_shapes)[0] = data;
  return MXReturnValue::MX_SUCCESS;
}

}  // namespace

REGISTER_OP(_gluonbert_layer_norm)
    .setParseAttrs(ParseAttrs)
    .setInferType(InferType)
    .setInferShape(InferShape)
    .setForward(Forward, "cpu")
    .setBackward(Backward, "cpu");

MXReturnValue initialize(int version) {
  if (version < 10900) {
    MX_ERROR_MSG << "gluonbert kernels need MXNet >= 1.9; got version code " << version;
    return MXReturnValue::MX_FAIL;
  }
  return MXReturnValue::MX_SUCCESS;
}

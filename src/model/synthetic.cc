#include "model/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <thread>

#include "common/f16.h"
#include "common/hash.h"
#include "common/log.h"
#include "model/vocab.h"

namespace sparkv {
namespace {

// Shapes follow the published configurations of TinyLlama-1.1B-Chat v1.0, Qwen2.5-0.5B, Qwen3-0.6B
// and Llama-3.2-1B. The "qwen2.5-0.5b" shape runs as the llama architecture, without QKV biases and
// with a 32000-token vocabulary, because the llama.cpp figures we compare with used that model.
// The qwen3-0.6b and llama-3.2-1b shapes keep their own architectures and vocabulary sizes. The
// "tiny" shapes are small enough for unit tests.
ModelShape MakeShape(std::string name, int32_t n_vocab, int32_t n_embd, int32_t n_layer, int32_t n_head,
                     int32_t n_head_kv, int32_t n_ff, int32_t n_ctx_train, float rope_theta, float rms_eps,
                     bool tied_output, std::string arch = "llama", int32_t head_dim = 0, float rope_scale_factor = 0,
                     int32_t rope_original_context = 8192) {
  ModelShape shape{std::move(name), n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train,
                   rope_theta, rms_eps, tied_output};
  shape.arch = std::move(arch);
  shape.head_dim = head_dim;
  shape.rope_scale_factor = rope_scale_factor;
  shape.rope_original_context = rope_original_context;
  return shape;
}

const ModelShape kShapes[] = {
    MakeShape("tinyllama-1.1b", 32000, 2048, 22, 32, 4, 5632, 2048, 10000.0f, 1e-5f, false),
    MakeShape("qwen2.5-0.5b", 32000, 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true),
    MakeShape("qwen3-0.6b", 151936, 1024, 28, 16, 8, 3072, 40960, 1000000.0f, 1e-6f, true, "qwen3", 128),
    MakeShape("llama-3.2-1b", 128256, 2048, 16, 32, 8, 8192, 131072, 500000.0f, 1e-5f, true, "llama", 0, 32.0f,
              8192),
    MakeShape("tiny", 1024, 128, 4, 4, 2, 384, 4096, 10000.0f, 1e-5f, false),
    MakeShape("tiny-256", 1024, 256, 2, 4, 2, 512, 4096, 10000.0f, 1e-5f, false),  // rows fit K-quant blocks
    MakeShape("tiny-qwen2", 1024, 128, 3, 4, 2, 384, 4096, 1000000.0f, 1e-6f, true, "qwen2"),
    // Heads wider than n_embd / n_head, as in Qwen3.
    MakeShape("tiny-qwen3", 1024, 128, 3, 4, 2, 384, 4096, 1000000.0f, 1e-6f, true, "qwen3", 64),
    // A short original context, so that positions of a unit test reach the scaled frequencies.
    MakeShape("tiny-llama3", 1024, 128, 3, 4, 2, 384, 4096, 500000.0f, 1e-5f, false, "llama", 0, 8.0f, 64),
};

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills row `row` of a tensor with uniform values in [-scale, scale), seeded by tensor and row so
// that the result does not depend on how rows are split across threads.
void FillRow(uint64_t tensor_seed, int64_t row, float scale, float* out, int64_t n) {
  uint64_t state = tensor_seed ^ (static_cast<uint64_t>(row) * 0xd1342543de82ef95ull);
  for (int64_t i = 0; i < n; ++i) {
    const double unit = static_cast<double>(SplitMix64(&state) >> 11) * 0x1.0p-53;  // [0, 1)
    out[i] = static_cast<float>((2.0 * unit - 1.0) * scale);
  }
}

// Writes a random matrix [n_in][n_out] of `type` into `out`, rows split across threads.
void FillMatrix(uint64_t tensor_seed, int64_t n_in, int64_t n_out, float scale, gguf::TensorType type, uint8_t* out) {
  const size_t row_bytes = *gguf::RowBytes(type, n_in);
  const int n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  std::vector<std::thread> workers;
  for (int t = 0; t < n_threads; ++t) {
    workers.emplace_back([=] {
      std::vector<float> row(n_in);
      for (int64_t r = t; r < n_out; r += n_threads) {
        FillRow(tensor_seed, r, scale, row.data(), n_in);
        uint8_t* destination = out + r * row_bytes;
        switch (type) {
          case gguf::TensorType::kF32: std::memcpy(destination, row.data(), row_bytes); break;
          case gguf::TensorType::kF16:
            for (int64_t i = 0; i < n_in; ++i) {
              const uint16_t h = F32ToF16(row[i]);
              std::memcpy(destination + 2 * i, &h, 2);
            }
            break;
          case gguf::TensorType::kBF16:
            for (int64_t i = 0; i < n_in; ++i) {
              const uint16_t h = F32ToBf16(row[i]);
              std::memcpy(destination + 2 * i, &h, 2);
            }
            break;
          case gguf::TensorType::kQ8_0: QuantizeRowQ8_0(row.data(), n_in, destination); break;
          case gguf::TensorType::kQ4_0: QuantizeRowQ4_0(row.data(), n_in, destination); break;
          case gguf::TensorType::kQ4_K: QuantizeRowQ4_K(row.data(), n_in, destination); break;
          case gguf::TensorType::kQ6_K: QuantizeRowQ6_K(row.data(), n_in, destination); break;
          default: break;  // rejected by WriteSyntheticModel
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

void QuantizeRowQ8_0(const float* source, int64_t n, uint8_t* out) {
  for (int64_t block = 0; block < n / 32; ++block) {
    const float* x = source + block * 32;
    float max_abs = 0.0f;
    for (int i = 0; i < 32; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    const float scale = max_abs / 127.0f;
    const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
    const uint16_t scale_f16 = F32ToF16(scale);
    uint8_t* block_out = out + block * 34;
    std::memcpy(block_out, &scale_f16, 2);
    for (int i = 0; i < 32; ++i) {
      block_out[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[i] * inverse)));
    }
  }
}

namespace {

void StoreF16(float value, uint8_t* out) {
  const uint16_t h = F32ToF16(value);
  std::memcpy(out, &h, 2);
}

int RoundClamp(float value, int lo, int hi) {
  return std::clamp(static_cast<int>(std::lround(value)), lo, hi);
}

}  // namespace

void QuantizeRowQ4_0(const float* source, int64_t n, uint8_t* out) {
  for (int64_t block = 0; block < n / 32; ++block) {
    const float* x = source + block * 32;
    float max_abs = 0.0f;
    for (int i = 0; i < 32; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    uint8_t* block_out = out + block * 18;
    StoreF16(max_abs / 7.0f, block_out);
    const float d = F16ToF32(F32ToF16(max_abs / 7.0f));
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 16; ++i) {
      const int low = RoundClamp(x[i] * inverse, -8, 7) + 8;
      const int high = RoundClamp(x[i + 16] * inverse, -8, 7) + 8;
      block_out[2 + i] = static_cast<uint8_t>(low | (high << 4));
    }
  }
}

void QuantizeRowQ4_K(const float* source, int64_t n, uint8_t* out) {
  for (int64_t super = 0; super < n / 256; ++super) {
    const float* x = source + super * 256;
    uint8_t* block_out = out + super * 144;

    // Per sub-block of 32: value = scale * q - min with q in [0, 15] and min >= 0.
    float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      const float lo = std::min(0.0f, *std::min_element(x + 32 * j, x + 32 * j + 32));
      const float hi = *std::max_element(x + 32 * j, x + 32 * j + 32);
      scale[j] = (hi - lo) / 15.0f;
      min[j] = -lo;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, min[j]);
    }
    StoreF16(max_scale / 63.0f, block_out);
    StoreF16(max_min / 63.0f, block_out + 2);
    const float d = F16ToF32(F32ToF16(max_scale / 63.0f));
    const float dmin = F16ToF32(F32ToF16(max_min / 63.0f));
    int sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = d != 0.0f ? RoundClamp(scale[j] / d, 0, 63) : 0;
      mn[j] = dmin != 0.0f ? RoundClamp(min[j] / dmin, 0, 63) : 0;
    }
    uint8_t* scales = block_out + 4;
    for (int j = 0; j < 4; ++j) {
      scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
      scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
      scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    uint8_t* qs = block_out + 16;
    std::memset(qs, 0, 128);
    for (int j = 0; j < 8; ++j) {
      const float step = d * static_cast<float>(sc[j]);
      const float offset = dmin * static_cast<float>(mn[j]);
      for (int i = 0; i < 32; ++i) {
        const int q = step != 0.0f ? RoundClamp((x[32 * j + i] + offset) / step, 0, 15) : 0;
        qs[32 * (j / 2) + i] |= static_cast<uint8_t>(q << (4 * (j % 2)));
      }
    }
  }
}

void QuantizeRowQ6_K(const float* source, int64_t n, uint8_t* out) {
  for (int64_t super = 0; super < n / 256; ++super) {
    const float* x = source + super * 256;
    uint8_t* block_out = out + super * 210;

    // Per sub-block of 16: value = d * scale * q with q in [-32, 31] and an int8 scale.
    float scale[16], max_scale = 0.0f;
    for (int s = 0; s < 16; ++s) {
      float max_abs = 0.0f;
      for (int i = 0; i < 16; ++i) max_abs = std::max(max_abs, std::fabs(x[16 * s + i]));
      scale[s] = max_abs / 31.0f;
      max_scale = std::max(max_scale, scale[s]);
    }
    StoreF16(max_scale / 127.0f, block_out + 208);
    const float d = F16ToF32(F32ToF16(max_scale / 127.0f));
    auto* scales = reinterpret_cast<int8_t*>(block_out + 192);
    std::memset(block_out, 0, 192);
    for (int s = 0; s < 16; ++s) {
      scales[s] = static_cast<int8_t>(d != 0.0f ? RoundClamp(scale[s] / d, -127, 127) : 0);
      const float step = d * static_cast<float>(scales[s]);
      for (int i = 0; i < 16; ++i) {
        const int e = 16 * s + i;
        const int q = (step != 0.0f ? RoundClamp(x[e] / step, -32, 31) : 0) + 32;
        const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
        block_out[64 * half + 32 * (quarter % 2) + l] |= static_cast<uint8_t>((q & 0xF) << (4 * (quarter / 2)));
        block_out[128 + 32 * half + l] |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
      }
    }
  }
}

std::vector<float> Llama3RopeFactors(const ModelShape& shape, int32_t n_rot) {
  // A pair's wavelength in positions is 2 pi / frequency. Wavelengths shorter than
  // context / high_freq_factor keep their frequency, longer than context / low_freq_factor are
  // slowed by the factor, and those between blend the two by where the wavelength falls.
  const double factor = shape.rope_scale_factor;
  const double context = shape.rope_original_context;
  const double low = shape.rope_low_freq_factor, high = shape.rope_high_freq_factor;
  std::vector<float> divisors(static_cast<size_t>(n_rot / 2));
  for (int32_t i = 0; i < n_rot / 2; ++i) {
    const double frequency = std::pow(static_cast<double>(shape.rope_theta), -2.0 * i / n_rot);
    const double wavelength = 2.0 * std::numbers::pi / frequency;
    double divisor = 1.0;
    if (wavelength > context / low) {
      divisor = factor;
    } else if (wavelength >= context / high) {
      const double blend = (context / wavelength - low) / (high - low);
      divisor = 1.0 / ((1.0 - blend) / factor + blend);
    }
    divisors[static_cast<size_t>(i)] = static_cast<float>(divisor);
  }
  return divisors;
}

const ModelShape* FindModelShape(std::string_view name) {
  for (const ModelShape& shape : kShapes) {
    if (shape.name == name) return &shape;
  }
  return nullptr;
}

std::vector<std::string> ModelShapeNames() {
  std::vector<std::string> names;
  for (const ModelShape& shape : kShapes) names.push_back(shape.name);
  return names;
}

Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& out_path) {
  const ModelShape* shape = FindModelShape(options.shape);
  if (shape == nullptr) {
    std::string names;
    for (const std::string& name : ModelShapeNames()) names += (names.empty() ? "" : ", ") + name;
    return InvalidArgumentError("unknown model shape '" + options.shape + "'; known shapes: " + names);
  }
  using gguf::TensorType;
  const bool k_quant = options.type == TensorType::kQ4_K || options.type == TensorType::kQ6_K;
  if (options.type != TensorType::kF32 && options.type != TensorType::kF16 && options.type != TensorType::kBF16 &&
      options.type != TensorType::kQ8_0 && options.type != TensorType::kQ4_0 && !k_quant) {
    return InvalidArgumentError("synthetic models support weight types f32, f16, bf16, q8_0, q4_0, q4_k and q6_k");
  }
  if (options.q4_k_m_mix && options.type != TensorType::kQ4_K) {
    return InvalidArgumentError("the Q4_K_M mix needs weight type q4_k");
  }


  Vocab vocab;
  if (!options.vocab_from.empty()) {
    SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<gguf::File> source, gguf::File::Open(options.vocab_from));
    SPARKV_ASSIGN_OR_RETURN(vocab, ReadVocab(*source));
  } else {
    vocab = MakeByteLevelVocab(shape->n_vocab);
  }
  const int64_t n_vocab = vocab.size();

  const int64_t n_embd = shape->n_embd;
  const int64_t head_dim = shape->head_size();
  const int64_t n_q = head_dim * shape->n_head;
  const int64_t n_kv = head_dim * shape->n_head_kv;
  const int64_t n_ff = shape->n_ff;
  const std::string& arch = shape->arch;
  auto u32 = [](int64_t v) { return gguf::Value::U32(static_cast<uint32_t>(v)); };

  gguf::Writer writer;
  writer.Set("general.architecture", gguf::Value::Str(arch));
  writer.Set("general.name", gguf::Value::Str("synthetic " + shape->name + " seed " + std::to_string(options.seed)));
  writer.Set(arch + ".context_length", u32(shape->n_ctx_train));
  writer.Set(arch + ".embedding_length", u32(n_embd));
  writer.Set(arch + ".feed_forward_length", u32(n_ff));
  writer.Set(arch + ".block_count", u32(shape->n_layer));
  writer.Set(arch + ".attention.head_count", u32(shape->n_head));
  writer.Set(arch + ".attention.head_count_kv", u32(shape->n_head_kv));
  if (shape->head_dim > 0) {
    writer.Set(arch + ".attention.key_length", u32(head_dim));
    writer.Set(arch + ".attention.value_length", u32(head_dim));
  }
  writer.Set(arch + ".rope.dimension_count", u32(head_dim));
  writer.Set(arch + ".rope.freq_base", gguf::Value::F32(shape->rope_theta));
  writer.Set(arch + ".attention.layer_norm_rms_epsilon", gguf::Value::F32(shape->rms_eps));
  writer.Set(arch + ".vocab_size", u32(n_vocab));
  WriteVocab(vocab, &writer);

  // Each tensor gets its own seed from the model seed and its name.
  auto tensor_seed = [&options](const std::string& name) {
    return options.seed * 0x9e3779b97f4a7c15ull ^ Checksum64(name.data(), name.size());
  };
  // K-quant super-blocks span 256 inputs; narrower rows fall back to Q8_0, as llama.cpp's
  // quantizer also falls back for them.
  // Layers whose attn_v and ffn_down get more bits in the Q4_K_M mix.
  const int32_t n_layer = shape->n_layer;
  auto more_bits = [&](const std::string& name) {
    if (!options.q4_k_m_mix) return false;
    // The classifier, which a tied model shares with the token embedding.
    if (name == "output.weight" || (name == "token_embd.weight" && shape->tied_output)) return true;
    const bool v_or_down = name.find(".attn_v.") != std::string::npos || name.find(".ffn_down.") != std::string::npos;
    if (!v_or_down) return false;
    const int32_t layer = std::stoi(name.substr(4));  // "blk.N."
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
  };
  auto add_matrix = [&](const std::string& name, int64_t n_in, int64_t n_out, float scale) {
    TensorType type = more_bits(name) ? TensorType::kQ6_K : options.type;
    if (k_quant && n_in % 256 != 0) type = TensorType::kQ8_0;  // the mix needs type q4_k
    const uint64_t seed = tensor_seed(name);
    return writer.AddTensor(name, type, {n_in, n_out}, [=](uint8_t* out, size_t) {
      FillMatrix(seed, n_in, n_out, scale, type, out);
    });
  };
  auto add_vector = [&](const std::string& name, const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return writer.AddTensor(name, TensorType::kF32, {static_cast<int64_t>(values.size())}, std::move(bytes));
  };
  auto add_norm = [&](const std::string& name) { return add_vector(name, std::vector<float>(n_embd, 1.0f)); };
  // Biases and per-head norm weights vary around `center`, so that a forward pass that skipped
  // or misplaced them would give other logits.
  auto add_random_vector = [&](const std::string& name, int64_t n, float center, float spread) {
    std::vector<float> values(static_cast<size_t>(n));
    FillRow(tensor_seed(name), 0, spread, values.data(), n);
    for (float& v : values) v += center;
    return add_vector(name, values);
  };

  // Uniform weights with standard deviation 1/sqrt(n_in) keep activations of order one.
  auto scale_for = [](int64_t n_in) { return static_cast<float>(std::sqrt(3.0 / static_cast<double>(n_in))); };
  SPARKV_RETURN_IF_ERROR(add_matrix("token_embd.weight", n_embd, n_vocab, 1.0f));
  SPARKV_RETURN_IF_ERROR(add_norm("output_norm.weight"));
  if (!shape->tied_output) SPARKV_RETURN_IF_ERROR(add_matrix("output.weight", n_embd, n_vocab, scale_for(n_embd)));
  if (shape->rope_scale_factor > 0) {
    SPARKV_RETURN_IF_ERROR(add_vector("rope_freqs.weight", Llama3RopeFactors(*shape, static_cast<int32_t>(head_dim))));
  }
  for (int32_t l = 0; l < shape->n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    SPARKV_RETURN_IF_ERROR(add_norm(p + "attn_norm.weight"));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "attn_q.weight", n_embd, n_q, scale_for(n_embd)));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "attn_k.weight", n_embd, n_kv, scale_for(n_embd)));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "attn_v.weight", n_embd, n_kv, scale_for(n_embd)));
    if (arch == "qwen2") {
      SPARKV_RETURN_IF_ERROR(add_random_vector(p + "attn_q.bias", n_q, 0.0f, 0.5f));
      SPARKV_RETURN_IF_ERROR(add_random_vector(p + "attn_k.bias", n_kv, 0.0f, 0.5f));
      SPARKV_RETURN_IF_ERROR(add_random_vector(p + "attn_v.bias", n_kv, 0.0f, 0.5f));
    }
    if (arch == "qwen3") {
      SPARKV_RETURN_IF_ERROR(add_random_vector(p + "attn_q_norm.weight", head_dim, 1.0f, 0.5f));
      SPARKV_RETURN_IF_ERROR(add_random_vector(p + "attn_k_norm.weight", head_dim, 1.0f, 0.5f));
    }
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "attn_output.weight", n_q, n_embd, scale_for(n_q)));
    SPARKV_RETURN_IF_ERROR(add_norm(p + "ffn_norm.weight"));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "ffn_gate.weight", n_embd, n_ff, scale_for(n_embd)));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "ffn_up.weight", n_embd, n_ff, scale_for(n_embd)));
    SPARKV_RETURN_IF_ERROR(add_matrix(p + "ffn_down.weight", n_ff, n_embd, scale_for(n_ff)));
  }

  SPARKV_RETURN_IF_ERROR(writer.WriteFile(out_path));
  SPARKV_LOG_INFO("wrote synthetic %s (%s, seed %llu) to %s", shape->name.c_str(),
                  options.q4_k_m_mix ? "q4_k_m mix" : std::string(gguf::GetTypeTraits(options.type)->name).c_str(),
                  static_cast<unsigned long long>(options.seed), out_path.c_str());
  return Status::Ok();
}

}  // namespace sparkv

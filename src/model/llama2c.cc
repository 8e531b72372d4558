#include "model/llama2c.h"

#include <cstdlib>
#include <cstring>

#include "common/file_util.h"
#include "common/log.h"
#include "gguf/gguf.h"
#include "model/vocab.h"

namespace sparkv {
namespace {

// The checkpoint header of llama2.c's run.c: seven int32 values.
struct Llama2cConfig {
  int32_t dim;         // n_embd
  int32_t hidden_dim;  // n_ff
  int32_t n_layers;
  int32_t n_heads;
  int32_t n_kv_heads;
  int32_t vocab_size;  // negative: a separate classifier follows the other weights
  int32_t seq_len;
};

std::vector<uint8_t> CopyFloats(const float* source, size_t n) {
  std::vector<uint8_t> bytes(n * sizeof(float));
  std::memcpy(bytes.data(), source, bytes.size());
  return bytes;
}

// Reads a llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score, int32 length
// and the bytes of the piece.
Result<Vocab> ReadLlama2cTokenizer(const std::string& path, int32_t n_vocab) {
  SPARKV_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path));
  const uint8_t* cursor = map.data();
  const uint8_t* end = map.data() + map.size();
  auto take = [&](void* out, size_t n) {
    if (static_cast<size_t>(end - cursor) < n) return false;
    std::memcpy(out, cursor, n);
    cursor += n;
    return true;
  };

  int32_t max_token_length;
  if (!take(&max_token_length, 4)) return CorruptionError("tokenizer '" + path + "' is truncated in its header");

  Vocab vocab;
  vocab.pieces.resize(n_vocab);
  vocab.scores.resize(n_vocab);
  vocab.types.resize(n_vocab, TokenType::kNormal);
  for (int32_t id = 0; id < n_vocab; ++id) {
    int32_t length;
    if (!take(&vocab.scores[id], 4) || !take(&length, 4)) {
      return CorruptionError("tokenizer '" + path + "' is truncated at token " + std::to_string(id) + " of " +
                             std::to_string(n_vocab) + " (does it belong to this checkpoint?)");
    }
    if (length < 0 || length > static_cast<int32_t>(end - cursor)) {
      return CorruptionError("tokenizer '" + path + "': token " + std::to_string(id) + " has invalid length " +
                             std::to_string(length));
    }
    vocab.pieces[id].assign(reinterpret_cast<const char*>(cursor), static_cast<size_t>(length));
    cursor += length;

    // llama2.c pieces use a plain space where SentencePiece uses U+2581.
    std::string& piece = vocab.pieces[id];
    std::string converted;
    for (char c : piece) converted += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    piece = converted;
    if (piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece[5] == '>') vocab.types[id] = TokenType::kByte;
  }
  vocab.types[0] = TokenType::kUnknown;
  if (n_vocab > 2) vocab.types[1] = vocab.types[2] = TokenType::kControl;
  return vocab;
}

}  // namespace

Status ConvertLlama2c(const std::string& checkpoint_path, const std::string& tokenizer_path,
                      const std::string& out_path) {
  SPARKV_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(checkpoint_path));
  Llama2cConfig config;
  if (map.size() < sizeof(config)) {
    return CorruptionError("llama2.c checkpoint '" + checkpoint_path + "' is shorter than its 28-byte header");
  }
  std::memcpy(&config, map.data(), sizeof(config));

  const bool shared_classifier = config.vocab_size > 0;
  const int64_t n_vocab = std::abs(static_cast<int64_t>(config.vocab_size));
  const int64_t dim = config.dim, hidden = config.hidden_dim, n_layers = config.n_layers;
  const bool sane = dim > 0 && hidden > 0 && n_layers > 0 && config.n_heads > 0 && config.n_kv_heads > 0 &&
                    n_vocab > 0 && config.seq_len > 0 && dim % config.n_heads == 0 &&
                    config.n_heads % config.n_kv_heads == 0 && dim <= (1 << 16) && hidden <= (1 << 18) &&
                    n_layers <= 1024 && n_vocab <= (1 << 20) && config.seq_len <= (1 << 20);
  if (!sane) {
    return CorruptionError("llama2.c checkpoint '" + checkpoint_path + "' has an implausible header (dim " +
                           std::to_string(config.dim) + ", layers " + std::to_string(config.n_layers) + ", heads " +
                           std::to_string(config.n_heads) + "/" + std::to_string(config.n_kv_heads) + ", vocab " +
                           std::to_string(config.vocab_size) + ")");
  }
  const int64_t head_size = dim / config.n_heads;
  const int64_t kv_dim = head_size * config.n_kv_heads;

  // Float counts of each section, in file order (run.c's memory_map_weights).
  const int64_t n_floats_needed = n_vocab * dim + n_layers * dim + n_layers * dim * dim + 2 * n_layers * dim * kv_dim +
                                  n_layers * dim * dim + n_layers * dim + 3 * n_layers * dim * hidden + dim +
                                  int64_t{config.seq_len} * head_size + (shared_classifier ? 0 : n_vocab * dim);
  const size_t n_floats_present = (map.size() - sizeof(config)) / sizeof(float);
  if (static_cast<uint64_t>(n_floats_needed) > n_floats_present) {
    return CorruptionError("llama2.c checkpoint '" + checkpoint_path + "' is truncated: its header needs " +
                           std::to_string(n_floats_needed) + " floats, the file has " + std::to_string(n_floats_present));
  }
  const float* cursor = reinterpret_cast<const float*>(map.data() + sizeof(config));
  auto take = [&cursor](int64_t n) {
    const float* start = cursor;
    cursor += n;
    return start;
  };

  gguf::Writer writer;
  writer.Set("general.architecture", gguf::Value::Str("llama"));
  writer.Set("general.name", gguf::Value::Str("llama2.c " + checkpoint_path.substr(checkpoint_path.find_last_of('/') + 1)));
  writer.Set("general.file_type", gguf::Value::U32(0));  // all F32
  writer.Set("llama.context_length", gguf::Value::U32(static_cast<uint32_t>(config.seq_len)));
  writer.Set("llama.embedding_length", gguf::Value::U32(static_cast<uint32_t>(dim)));
  writer.Set("llama.feed_forward_length", gguf::Value::U32(static_cast<uint32_t>(hidden)));
  writer.Set("llama.block_count", gguf::Value::U32(static_cast<uint32_t>(n_layers)));
  writer.Set("llama.attention.head_count", gguf::Value::U32(static_cast<uint32_t>(config.n_heads)));
  writer.Set("llama.attention.head_count_kv", gguf::Value::U32(static_cast<uint32_t>(config.n_kv_heads)));
  writer.Set("llama.rope.dimension_count", gguf::Value::U32(static_cast<uint32_t>(head_size)));
  writer.Set("llama.attention.layer_norm_rms_epsilon", gguf::Value::F32(1e-5f));  // run.c's rmsnorm epsilon
  writer.Set("llama.vocab_size", gguf::Value::U32(static_cast<uint32_t>(n_vocab)));

  Vocab vocab;
  if (tokenizer_path.empty()) {
    vocab = MakePlaceholderVocab(static_cast<int32_t>(n_vocab));
  } else {
    SPARKV_ASSIGN_OR_RETURN(vocab, ReadLlama2cTokenizer(tokenizer_path, static_cast<int32_t>(n_vocab)));
  }
  vocab.add_bos = true;
  WriteVocab(vocab, &writer);

  // llama2.c stores every matrix row-major as (out, in), which is GGUF's ne = [in, out]; RoPE
  // rotates adjacent pairs as llama.cpp's normal RoPE does, so Q and K need no permutation.
  const float* embedding = take(n_vocab * dim);
  const float* rms_att = take(n_layers * dim);
  const float* wq = take(n_layers * dim * dim);
  const float* wk = take(n_layers * dim * kv_dim);
  const float* wv = take(n_layers * dim * kv_dim);
  const float* wo = take(n_layers * dim * dim);
  const float* rms_ffn = take(n_layers * dim);
  const float* w1 = take(n_layers * dim * hidden);
  const float* w2 = take(n_layers * hidden * dim);
  const float* w3 = take(n_layers * dim * hidden);
  const float* rms_final = take(dim);
  take(int64_t{config.seq_len} * head_size);  // legacy freq_cis_real and freq_cis_imag, unused
  const float* classifier = shared_classifier ? nullptr : take(n_vocab * dim);

  using gguf::TensorType;
  SPARKV_RETURN_IF_ERROR(writer.AddTensor("token_embd.weight", TensorType::kF32, {dim, n_vocab}, CopyFloats(embedding, n_vocab * dim)));
  SPARKV_RETURN_IF_ERROR(writer.AddTensor("output_norm.weight", TensorType::kF32, {dim}, CopyFloats(rms_final, dim)));
  if (classifier != nullptr) {
    SPARKV_RETURN_IF_ERROR(writer.AddTensor("output.weight", TensorType::kF32, {dim, n_vocab}, CopyFloats(classifier, n_vocab * dim)));
  }
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "attn_norm.weight", TensorType::kF32, {dim}, CopyFloats(rms_att + l * dim, dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "attn_q.weight", TensorType::kF32, {dim, dim}, CopyFloats(wq + l * dim * dim, dim * dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "attn_k.weight", TensorType::kF32, {dim, kv_dim}, CopyFloats(wk + l * dim * kv_dim, dim * kv_dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "attn_v.weight", TensorType::kF32, {dim, kv_dim}, CopyFloats(wv + l * dim * kv_dim, dim * kv_dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "attn_output.weight", TensorType::kF32, {dim, dim}, CopyFloats(wo + l * dim * dim, dim * dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "ffn_norm.weight", TensorType::kF32, {dim}, CopyFloats(rms_ffn + l * dim, dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "ffn_gate.weight", TensorType::kF32, {dim, hidden}, CopyFloats(w1 + l * dim * hidden, dim * hidden)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "ffn_down.weight", TensorType::kF32, {hidden, dim}, CopyFloats(w2 + l * hidden * dim, hidden * dim)));
    SPARKV_RETURN_IF_ERROR(writer.AddTensor(p + "ffn_up.weight", TensorType::kF32, {dim, hidden}, CopyFloats(w3 + l * dim * hidden, dim * hidden)));
  }

  SPARKV_RETURN_IF_ERROR(writer.WriteFile(out_path));
  SPARKV_LOG_INFO("converted %s (%lld layers, dim %lld, vocab %lld, %s classifier) to %s", checkpoint_path.c_str(),
                  static_cast<long long>(n_layers), static_cast<long long>(dim), static_cast<long long>(n_vocab),
                  shared_classifier ? "shared" : "separate", out_path.c_str());
  return Status::Ok();
}

}  // namespace sparkv

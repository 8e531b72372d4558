#include "model/model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/file_util.h"
#include "model/llama2c.h"
#include "model/synthetic.h"
#include "test_support.h"

namespace sparkv {
namespace {

TEST(ModelTest, Stories260KConvertsAndLoads) {
  Result<std::unique_ptr<Model>> model = Model::Load(testing::Stories260KGguf());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const HParams& hp = (*model)->hparams();
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_embd, 64);
  EXPECT_EQ(hp.n_ff, 172);
  EXPECT_EQ(hp.n_layer, 5);
  EXPECT_EQ(hp.n_head, 8);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 8);
  EXPECT_EQ(hp.n_vocab, 512);
  EXPECT_EQ(hp.n_ctx_train, 512);
  EXPECT_EQ((*model)->vocab().size(), 512);
  // A positive vocab_size in the llama2.c header means a shared classifier.
  EXPECT_EQ((*model)->output().data, (*model)->token_embedding().data);
}

TEST(ModelTest, FingerprintIsStableAndTracksWeights) {
  const std::string path = testing::Stories260KGguf();
  std::unique_ptr<Model> first = std::move(Model::Load(path)).value();
  std::unique_ptr<Model> second = std::move(Model::Load(path)).value();
  EXPECT_EQ(first->fingerprint(), second->fingerprint());

  // Flip one weight bit in a copy: the fingerprint must change.
  testing::TempDir dir;
  std::string bytes = std::move(ReadFileToString(path)).value();
  const gguf::TensorInfo* wq = first->file().FindTensor("blk.2.attn_q.weight");
  ASSERT_NE(wq, nullptr);
  const size_t offset = static_cast<size_t>(first->file().TensorData(*wq) - first->file().bytes().data());
  bytes[offset + 5] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomic(dir.File("changed.gguf"), bytes).ok());
  std::unique_ptr<Model> changed = std::move(Model::Load(dir.File("changed.gguf"))).value();
  EXPECT_NE(changed->fingerprint(), first->fingerprint());
}

// Writes a random llama2.c checkpoint; a negative vocab size marks a separate classifier.
void WriteLlama2cCheckpoint(const std::string& path, int32_t vocab_size_field, std::vector<float>* classifier) {
  const int32_t dim = 16, hidden = 32, layers = 2, heads = 4, kv_heads = 2, seq_len = 8;
  const int32_t n_vocab = std::abs(vocab_size_field);
  const int32_t head_size = dim / heads, kv_dim = head_size * kv_heads;
  const int64_t n_floats = int64_t{n_vocab} * dim + layers * dim + layers * dim * dim + 2 * layers * dim * kv_dim +
                           layers * dim * dim + layers * dim + 3 * layers * dim * hidden + dim + seq_len * head_size;
  std::vector<float> weights(n_floats);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>((i * 37 % 101) - 50) / 100.0f;
  if (vocab_size_field < 0) {
    classifier->resize(static_cast<size_t>(n_vocab) * dim);
    for (size_t i = 0; i < classifier->size(); ++i) (*classifier)[i] = static_cast<float>(i % 13) * 0.25f;
    weights.insert(weights.end(), classifier->begin(), classifier->end());
  }
  std::ofstream out(path, std::ios::binary);
  const int32_t header[7] = {dim, hidden, layers, heads, kv_heads, vocab_size_field, seq_len};
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  out.write(reinterpret_cast<const char*>(weights.data()), static_cast<std::streamsize>(weights.size() * 4));
}

TEST(ModelTest, Llama2cSeparateClassifierBecomesOutputTensor) {
  testing::TempDir dir;
  std::vector<float> classifier;
  WriteLlama2cCheckpoint(dir.File("model.bin"), -300, &classifier);
  ASSERT_TRUE(ConvertLlama2c(dir.File("model.bin"), "", dir.File("model.gguf")).ok());

  std::unique_ptr<Model> model = std::move(Model::Load(dir.File("model.gguf"))).value();
  EXPECT_EQ(model->hparams().n_vocab, 300);
  EXPECT_NE(model->output().data, model->token_embedding().data);
  ASSERT_EQ(model->output().info->n_bytes, classifier.size() * 4);
  EXPECT_EQ(std::memcmp(model->output().data, classifier.data(), classifier.size() * 4), 0);
}

TEST(ModelTest, Llama2cTruncatedCheckpointIsRejected) {
  testing::TempDir dir;
  std::vector<float> unused;
  WriteLlama2cCheckpoint(dir.File("model.bin"), 300, &unused);
  std::string bytes = std::move(ReadFileToString(dir.File("model.bin"))).value();
  bytes.resize(bytes.size() - 100);
  ASSERT_TRUE(WriteFileAtomic(dir.File("short.bin"), bytes).ok());

  const Status status = ConvertLlama2c(dir.File("short.bin"), "", dir.File("out.gguf"));
  EXPECT_EQ(status.code(), ErrorCode::kCorruption);
  EXPECT_NE(status.message().find("truncated"), std::string::npos);
}

TEST(ModelTest, Llama2cTokenizerFileBecomesVocabulary) {
  testing::TempDir dir;
  std::vector<float> unused;
  WriteLlama2cCheckpoint(dir.File("model.bin"), 260, &unused);
  // tokenizer.bin: max_token_length, then (score, length, bytes) per token.
  std::ofstream out(dir.File("tokenizer.bin"), std::ios::binary);
  const int32_t max_length = 8;
  out.write(reinterpret_cast<const char*>(&max_length), 4);
  for (int32_t id = 0; id < 260; ++id) {
    std::string piece = " the";
    if (id == 0) piece = "<unk>";
    if (id == 1) piece = "<s>";
    if (id == 2) piece = "</s>";
    if (id >= 3 && id < 259) {
      char text[8];
      std::snprintf(text, sizeof(text), "<0x%02X>", id - 3);
      piece = text;
    }
    const float score = -static_cast<float>(id);
    const int32_t length = static_cast<int32_t>(piece.size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&length), 4);
    out.write(piece.data(), length);
  }
  out.close();

  ASSERT_TRUE(ConvertLlama2c(dir.File("model.bin"), dir.File("tokenizer.bin"), dir.File("model.gguf")).ok());
  std::unique_ptr<Model> model = std::move(Model::Load(dir.File("model.gguf"))).value();
  const Vocab& vocab = model->vocab();
  EXPECT_EQ(vocab.pieces[259], "\xE2\x96\x81the");  // the space becomes U+2581
  EXPECT_EQ(vocab.types[3], TokenType::kByte);
  EXPECT_EQ(vocab.types[1], TokenType::kControl);
  EXPECT_EQ(vocab.scores[259], -259.0f);
}

TEST(ModelTest, SyntheticModelIsDeterministicPerSeed) {
  testing::TempDir dir;
  SyntheticModelOptions options;
  options.shape = "tiny";
  options.seed = 7;
  ASSERT_TRUE(WriteSyntheticModel(options, dir.File("a.gguf")).ok());
  ASSERT_TRUE(WriteSyntheticModel(options, dir.File("b.gguf")).ok());
  options.seed = 8;
  ASSERT_TRUE(WriteSyntheticModel(options, dir.File("c.gguf")).ok());

  EXPECT_EQ(*ReadFileToString(dir.File("a.gguf")), *ReadFileToString(dir.File("b.gguf")));
  std::unique_ptr<Model> a = std::move(Model::Load(dir.File("a.gguf"))).value();
  std::unique_ptr<Model> c = std::move(Model::Load(dir.File("c.gguf"))).value();
  EXPECT_NE(a->fingerprint(), c->fingerprint());
  EXPECT_EQ(a->hparams().n_layer, 4);
  EXPECT_EQ(a->layers()[0].wq.type(), gguf::TensorType::kQ8_0);
  EXPECT_EQ(a->vocab().size(), 1024);
}

TEST(ModelTest, Q4KMMixGivesSomeMatricesSixBits) {
  testing::TempDir dir;
  SyntheticModelOptions options;
  options.shape = "tiny-256";  // 2 layers: layer 1 is in the last eighth
  options.type = gguf::TensorType::kQ4_K;
  options.q4_k_m_mix = true;
  ASSERT_TRUE(WriteSyntheticModel(options, dir.File("m.gguf")).ok());
  std::unique_ptr<Model> model = std::move(Model::Load(dir.File("m.gguf"))).value();
  EXPECT_EQ(model->output().type(), gguf::TensorType::kQ6_K);
  EXPECT_EQ(model->layers()[0].wv.type(), gguf::TensorType::kQ4_K);
  EXPECT_EQ(model->layers()[0].w_down.type(), gguf::TensorType::kQ4_K);
  EXPECT_EQ(model->layers()[1].wv.type(), gguf::TensorType::kQ6_K);
  EXPECT_EQ(model->layers()[1].w_down.type(), gguf::TensorType::kQ6_K);
  EXPECT_EQ(model->layers()[1].wq.type(), gguf::TensorType::kQ4_K);

  options.type = gguf::TensorType::kQ8_0;
  const Status status = WriteSyntheticModel(options, dir.File("bad.gguf"));
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find("q4_k"), std::string::npos) << status.message();
}

TEST(ModelTest, SyntheticShapesMatchPublishedConfigurations) {
  const ModelShape* tinyllama = FindModelShape("tinyllama-1.1b");
  ASSERT_NE(tinyllama, nullptr);
  EXPECT_EQ(tinyllama->n_layer, 22);
  EXPECT_EQ(tinyllama->n_embd, 2048);
  EXPECT_EQ(tinyllama->n_head_kv, 4);
  const ModelShape* qwen = FindModelShape("qwen2.5-0.5b");
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->n_layer, 24);
  EXPECT_EQ(qwen->n_head, 14);
  EXPECT_EQ(qwen->n_ff, 4864);
  EXPECT_EQ(FindModelShape("gpt-5"), nullptr);

  SyntheticModelOptions options;
  options.shape = "gpt-5";
  const Status status = WriteSyntheticModel(options, "/tmp/unused.gguf");
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find("tinyllama-1.1b"), std::string::npos);
}

TEST(ModelTest, UnknownArchitectureIsRejected) {
  testing::TempDir dir;
  gguf::Writer writer;
  writer.Set("general.architecture", gguf::Value::Str("mamba"));
  ASSERT_TRUE(writer.WriteFile(dir.File("m.gguf")).ok());
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("m.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(model.status().message().find("supported: llama"), std::string::npos);
}

TEST(ModelTest, WrongTensorShapeIsRejected) {
  testing::TempDir dir;
  SyntheticModelOptions options;
  options.shape = "tiny";
  ASSERT_TRUE(WriteSyntheticModel(options, dir.File("m.gguf")).ok());
  std::unique_ptr<gguf::File> file = std::move(gguf::File::Open(dir.File("m.gguf"))).value();

  // Rewrite the model with one more layer declared than it has.
  gguf::Writer writer;
  for (const gguf::KeyValue& entry : file->metadata()) writer.Set(entry.key, entry.value);
  writer.Set("llama.block_count", gguf::Value::U32(5));
  for (const gguf::TensorInfo& info : file->tensors()) {
    std::vector<uint8_t> data(file->TensorData(info), file->TensorData(info) + info.n_bytes);
    std::vector<int64_t> ne(info.ne, info.ne + info.n_dims);
    ASSERT_TRUE(writer.AddTensor(info.name, info.type, ne, std::move(data)).ok());
  }
  ASSERT_TRUE(writer.WriteFile(dir.File("lying.gguf")).ok());
  Result<std::unique_ptr<Model>> model = Model::Load(dir.File("lying.gguf"));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("blk.4.attn_norm.weight"), std::string::npos);
}

}  // namespace
}  // namespace sparkv

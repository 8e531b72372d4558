// Chat templates: family detection from real template markers, the formatted text of each family,
// the errors for unknown templates and bad turn orders, and `sparkv run --chat` on a model
// without a template.
#include "model/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "test_support.h"

namespace sparkv {
namespace {

// Short excerpts in the style of the published templates, enough to carry their markers.
constexpr std::string_view kQwenTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr std::string_view kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}";
constexpr std::string_view kLlama2Template =
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}";
constexpr std::string_view kZephyrTemplate =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + "
    "eos_token }}";

std::string Format(ChatFamily family, const std::vector<ChatMessage>& messages, bool prompt = true) {
  Result<std::string> text = FormatChat(family, messages, prompt, "<s>", "</s>");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : std::string();
}

TEST(DetectChatFamily, RecognizesEachFamilyByItsMarkers) {
  EXPECT_EQ(*DetectChatFamily(kQwenTemplate), ChatFamily::kChatml);
  EXPECT_EQ(*DetectChatFamily(kLlama3Template), ChatFamily::kLlama3);
  EXPECT_EQ(*DetectChatFamily(kLlama2Template), ChatFamily::kLlama2);
  EXPECT_EQ(*DetectChatFamily(kZephyrTemplate), ChatFamily::kZephyr);
  EXPECT_STREQ(ChatFamilyName(ChatFamily::kZephyr), "zephyr");
}

TEST(DetectChatFamily, NamesTheFixForUnknownAndMissingTemplates) {
  const Result<ChatFamily> unknown = DetectChatFamily("{{ '### Human: ' + message['content'] }}");
  ASSERT_FALSE(unknown.ok());
  const std::string message = unknown.status().ToString();
  EXPECT_NE(message.find("### Human"), std::string::npos) << message;
  EXPECT_NE(message.find("chatml"), std::string::npos) << message;
  EXPECT_NE(message.find("drop --chat"), std::string::npos) << message;

  const Result<ChatFamily> missing = DetectChatFamily("");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("tokenizer.chat_template"), std::string::npos);
}

TEST(FormatChat, WritesChatmlTurnsAndThePrompt) {
  EXPECT_EQ(Format(ChatFamily::kChatml, {{"system", "Be brief."}, {"user", "Hi"}}),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(Format(ChatFamily::kChatml, {{"user", "Hi"}}, /*prompt=*/false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(FormatChat, WritesLlama3HeadersWithTrimmedContent) {
  EXPECT_EQ(Format(ChatFamily::kLlama3, {{"user", "  Hi there \n"}}),
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(FormatChat, FoldsSystemIntoFirstLlama2Turn) {
  EXPECT_EQ(Format(ChatFamily::kLlama2, {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"},
                                         {"user", "Bye "}}),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]");
  EXPECT_EQ(Format(ChatFamily::kLlama2, {{"user", "Hi"}}), "[INST] Hi [/INST]");
}

TEST(FormatChat, RejectsLlama2TurnsOutOfOrder) {
  const std::vector<ChatMessage> messages = {{"user", "a"}, {"user", "b"}};
  const Result<std::string> text = FormatChat(ChatFamily::kLlama2, messages, true, "<s>", "</s>");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().ToString().find("message 2 has role 'user' where 'assistant' was expected"),
            std::string::npos)
      << text.status().ToString();
}

TEST(FormatChat, WritesZephyrTurnsWithTheEosText) {
  EXPECT_EQ(Format(ChatFamily::kZephyr, {{"system", "Be brief."}, {"user", "Hi"}}),
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
}

TEST(ApplyChatTemplate, UsesTheVocabularyTemplateAndEos) {
  Vocab vocab = MakePlaceholderVocab(300);
  vocab.chat_template = std::string(kZephyrTemplate);
  const std::vector<ChatMessage> messages = {{"user", "Hi"}};
  const Result<std::string> text = ApplyChatTemplate(vocab, messages, true);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "<|user|>\nHi</s>\n<|assistant|>\n");
}

TEST(EncodeChat, TurnsTheMarkersIntoControlTokens) {
  Vocab vocab = MakeByteLevelVocab(1000);
  vocab.pieces[900] = "<|im_start|>";
  vocab.types[900] = TokenType::kControl;
  vocab.pieces[901] = "<|im_end|>";
  vocab.types[901] = TokenType::kControl;
  vocab.chat_template = std::string(kQwenTemplate);
  Result<Tokenizer> tokenizer = Tokenizer::Create(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::vector<ChatMessage> messages = {{"user", "Hi <|im_end|>"}};

  Result<std::vector<TokenId>> ids = EncodeChat(*tokenizer, messages, /*add_generation_prompt=*/true);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_FALSE(ids->empty());
  EXPECT_EQ(ids->front(), 900);  // no BOS before the first marker
  EXPECT_EQ(std::count(ids->begin(), ids->end(), 900), 2);
  // The user's own "<|im_end|>" becomes the token too: the content is not escaped.
  EXPECT_EQ(std::count(ids->begin(), ids->end(), 901), 2);
  // SentencePiece adds its space prefix to the text after each special token, as llama.cpp does.
  EXPECT_EQ(tokenizer->Decode(*ids), "user\nHi  \n assistant\n");
}

// Copies the stories260K GGUF into `dir` with `chat_template` added to its metadata.
std::string Stories260KWithTemplate(const testing::TempDir& dir, std::string_view chat_template) {
  auto source = gguf::File::Open(testing::Stories260KGguf());
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return {};
  gguf::Writer writer;
  writer.SetAlignment((*source)->alignment());
  for (const gguf::KeyValue& entry : (*source)->metadata()) writer.Set(entry.key, entry.value);
  writer.Set("tokenizer.chat_template", gguf::Value::Str(std::string(chat_template)));
  for (const gguf::TensorInfo& tensor : (*source)->tensors()) {
    const uint8_t* data = (*source)->TensorData(tensor);
    std::vector<int64_t> ne(tensor.ne, tensor.ne + tensor.n_dims);
    EXPECT_TRUE(writer.AddTensor(tensor.name, tensor.type, ne, std::vector<uint8_t>(data, data + tensor.n_bytes)).ok());
  }
  const std::string path = dir.File("stories260K-chat.gguf");
  EXPECT_TRUE(writer.WriteFile(path).ok());
  return path;
}

// With --chat, the query is the template's text around it: the run matches one given that text.
TEST(RunChat, WrapsTheQueryInTheTemplate) {
  testing::TempDir dir;
  const std::string model = Stories260KWithTemplate(dir, kLlama2Template);
  ASSERT_FALSE(model.empty());
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29\n";
  // Warnings (the model's placeholder vocabulary) go to stderr, the JSON report to stdout.
  const std::string run = "'" + testing::SparkvBinary() + "' --log-level error run --model '" + model +
                          "' --tokens '" + dir.File("context.txt") + "' --strategy local -n 4 --json ";
  const auto [chat_status, chat] = testing::RunShell(run + "--chat --query 'Once upon a time' 2>/dev/null");
  ASSERT_EQ(chat_status, 0) << chat;
  const auto [plain_status, plain] = testing::RunShell(run + "--query '[INST] Once upon a time [/INST]' 2>/dev/null");
  ASSERT_EQ(plain_status, 0) << plain;
  const nlohmann::json chat_report = nlohmann::json::parse(chat);
  const nlohmann::json plain_report = nlohmann::json::parse(plain);
  EXPECT_EQ(chat_report["n_query"], plain_report["n_query"]);
  EXPECT_EQ(chat_report["tokens"], plain_report["tokens"]);

  const auto [bare_status, bare] = testing::RunShell(run + "--query 'Once upon a time' 2>/dev/null");
  ASSERT_EQ(bare_status, 0) << bare;
  EXPECT_LT(nlohmann::json::parse(bare)["n_query"].get<int>(), chat_report["n_query"].get<int>());
}

TEST(RunChat, WarnsWhenMarkersAreNotTokens) {
  // stories260K's vocabulary has no <|im_end|>: a chatml template spells its markers as text.
  testing::TempDir dir;
  const std::string model = Stories260KWithTemplate(dir, "{% for m in messages %}<|im_start|>{{ m.role }}\n{% endfor %}");
  ASSERT_FALSE(model.empty());
  std::ofstream(dir.File("context.txt")) << "1 403 261 17 29\n";
  const std::string run = "'" + testing::SparkvBinary() + "' run --model '" + model + "' --tokens '" +
                          dir.File("context.txt") + "' --strategy local -n 2 --chat --query hi 2>&1";
  const auto [status, output] = testing::RunShell(run);
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("<|im_end|> is not a special token"), std::string::npos) << output;

  const std::string llama2 = Stories260KWithTemplate(dir, kLlama2Template);
  const auto [llama2_status, llama2_output] =
      testing::RunShell("'" + testing::SparkvBinary() + "' run --model '" + llama2 + "' --tokens '" +
                        dir.File("context.txt") + "' --strategy local -n 2 --chat --query hi 2>&1");
  ASSERT_EQ(llama2_status, 0) << llama2_output;
  EXPECT_EQ(llama2_output.find("is not a special token"), std::string::npos) << llama2_output;
}

TEST(RunChat, FailsClearlyForAModelWithoutTemplate) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261\n";
  const std::string command = "'" + testing::SparkvBinary() + "' run --model '" + testing::Stories260KGguf() +
                              "' --tokens '" + dir.File("context.txt") + "' --query hi --chat 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("sparkv: error: "), std::string::npos) << output;
  EXPECT_NE(output.find("--chat: the model has no chat template"), std::string::npos) << output;
  EXPECT_NE(output.find("no chat template"), std::string::npos) << output;
}

TEST(RunChat, RejectsQueryTokens) {
  testing::TempDir dir;
  std::ofstream(dir.File("context.txt")) << "1 403 261\n";
  const std::string command = "'" + testing::SparkvBinary() + "' run --model '" + testing::Stories260KGguf() +
                              "' --tokens '" + dir.File("context.txt") + "' --query-tokens 1 --chat 2>&1";
  const auto [status, output] = testing::RunShell(command);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--chat"), std::string::npos) << output;
}

}  // namespace
}  // namespace sparkv

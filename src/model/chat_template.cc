#include "model/chat_template.h"

#include <array>
#include <utility>

namespace sparkv {
namespace {

constexpr std::array<std::pair<std::string_view, ChatFamily>, 4> kMarkers = {{
    {"<|start_header_id|>", ChatFamily::kLlama3},
    {"<|im_start|>", ChatFamily::kChatml},
    {"<|user|>", ChatFamily::kZephyr},
    {"[INST]", ChatFamily::kLlama2},
}};

std::string_view Trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

Result<std::string> FormatLlama2(std::span<const ChatMessage> messages, std::string_view bos, std::string_view eos) {
  std::string out;
  size_t i = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = "<<SYS>>\n" + std::string(Trim(messages[0].content)) + "\n<</SYS>>\n\n";
    i = 1;
  }
  bool first_user = true;
  for (size_t turn = 0; i < messages.size(); ++i, ++turn) {
    const ChatMessage& message = messages[i];
    const char* expected = turn % 2 == 0 ? "user" : "assistant";
    if (message.role != expected) {
      return InvalidArgumentError("llama2 chat: message " + std::to_string(i + 1) + " has role '" + message.role +
                                  "' where '" + expected + "' was expected; after an optional first system "
                                  "message, user and assistant messages must take turns, starting with user");
    }
    if (turn % 2 == 0) {
      if (!first_user) out += bos;
      out += "[INST] ";
      if (first_user) out += system;
      out += Trim(message.content);
      out += " [/INST]";
      first_user = false;
    } else {
      out += " ";
      out += Trim(message.content);
      out += " ";
      out += eos;
    }
  }
  return out;
}

}  // namespace

Result<ChatFamily> DetectChatFamily(std::string_view chat_template) {
  if (chat_template.empty()) {
    return NotFoundError("the model has no chat template (GGUF key tokenizer.chat_template); drop --chat and "
                         "write the turn markers into --query yourself");
  }
  for (const auto& [marker, family] : kMarkers) {
    if (chat_template.find(marker) != std::string_view::npos) return family;
  }
  return UnsupportedError("the model's chat template '" + std::string(chat_template.substr(0, 60)) +
                          (chat_template.size() > 60 ? "...'" : "'") +
                          " is of no known family (chatml <|im_start|>, llama3 <|start_header_id|>, llama2 "
                          "[INST], zephyr <|user|>); drop --chat and write the turn markers into --query yourself");
}

const char* ChatFamilyName(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatml:
      return "chatml";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kZephyr:
      return "zephyr";
  }
  return "unknown";
}

Result<std::string> FormatChat(ChatFamily family, std::span<const ChatMessage> messages, bool add_generation_prompt,
                               std::string_view bos, std::string_view eos) {
  std::string out;
  switch (family) {
    case ChatFamily::kChatml:
      for (const ChatMessage& message : messages) {
        out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatFamily::kLlama3:
      for (const ChatMessage& message : messages) {
        out += "<|start_header_id|>" + message.role + "<|end_header_id|>\n\n";
        out += Trim(message.content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatFamily::kLlama2:
      return FormatLlama2(messages, bos, eos);
    case ChatFamily::kZephyr:
      for (const ChatMessage& message : messages) {
        out += "<|" + message.role + "|>\n" + message.content;
        out += eos;
        out += "\n";
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
  }
  return InternalError("unknown chat family");
}

Result<std::string> ApplyChatTemplate(const Vocab& vocab, std::span<const ChatMessage> messages,
                                      bool add_generation_prompt) {
  SPARKV_ASSIGN_OR_RETURN(const ChatFamily family, DetectChatFamily(vocab.chat_template));
  auto piece = [&](int32_t id) { return id >= 0 && id < vocab.size() ? vocab.pieces[id] : std::string(); };
  return FormatChat(family, messages, add_generation_prompt, piece(vocab.bos_id), piece(vocab.eos_id));
}

Result<std::vector<TokenId>> EncodeChat(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                        bool add_generation_prompt) {
  SPARKV_ASSIGN_OR_RETURN(const std::string text, ApplyChatTemplate(tokenizer.vocab(), messages, add_generation_prompt));
  return tokenizer.Encode(text, /*add_special=*/false, /*parse_special=*/true);
}

}  // namespace sparkv

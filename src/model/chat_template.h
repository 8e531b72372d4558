// Chat prompts in the format of the model's `tokenizer.chat_template`. The Jinja template itself
// is not run: its family is recognized by the turn markers it contains, and the messages are
// formatted the way that family's templates write them.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "model/vocab.h"
#include "sparkv/status.h"

namespace sparkv {

enum class ChatFamily {
  kChatml,  // <|im_start|>ROLE\n...<|im_end|>\n, as Qwen writes it
  kLlama3,  // <|start_header_id|>ROLE<|end_header_id|>\n\n...<|eot_id|>
  kLlama2,  // [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kZephyr,  // <|user|>\n...</s>\n, as TinyLlama-Chat writes it
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// The family of a chat template, from the first of these markers it contains:
// <|start_header_id|> (llama3), <|im_start|> (chatml), <|user|> (zephyr), [INST] (llama2).
// An empty template or one without any of them is an error that names the fix.
Result<ChatFamily> DetectChatFamily(std::string_view chat_template);

const char* ChatFamilyName(ChatFamily family);

// Formats `messages` in order, then, with add_generation_prompt, the opening of an assistant
// turn. `bos` and `eos` are the texts of the vocabulary's BOS and EOS tokens, which llama2 and
// zephyr write between turns. The text has no leading BOS: the tokenizer adds that (add_special),
// and a query that continues a context must not have one. Encode the result with
// parse_special so that the markers become their tokens.
//  - chatml: every role is written as given; no default system message is added.
//  - llama3: contents are trimmed of surrounding whitespace, as the Llama 3 templates do.
//  - llama2: an optional first system message goes inside the first [INST]. After it, user and
//    assistant messages must take turns, starting with user. Contents are trimmed, and every
//    user turn after the first starts with `bos`. The generation prompt adds nothing, because
//    [/INST] already ends the text.
//  - zephyr: every turn is <|ROLE|>\nCONTENT then `eos` and a newline; the prompt <|assistant|>\n.
Result<std::string> FormatChat(ChatFamily family, std::span<const ChatMessage> messages, bool add_generation_prompt,
                               std::string_view bos, std::string_view eos);

// DetectChatFamily on vocab.chat_template, then FormatChat with the vocabulary's BOS and EOS
// pieces (empty when it has none).
Result<std::string> ApplyChatTemplate(const Vocab& vocab, std::span<const ChatMessage> messages,
                                      bool add_generation_prompt);

// Applies the tokenizer vocabulary's chat template and encodes the text with parse_special and
// without add_special, so the turn markers become their tokens and no BOS comes first.
Result<std::vector<TokenId>> EncodeChat(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                        bool add_generation_prompt);

}  // namespace sparkv

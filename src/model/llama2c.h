// Conversion of llama2.c checkpoints (Karpathy's run.c format) to GGUF.
#pragma once

#include <string>

#include "sparkv/status.h"

namespace sparkv {

// Converts the llama2.c checkpoint at `checkpoint_path` to an F32 GGUF at `out_path` that llama.cpp
// also loads. A positive vocab_size in the header means the classifier shares the token embedding;
// a negative one means a separate classifier follows the weights. With an empty
// `tokenizer_path`, the GGUF gets a placeholder vocabulary with one piece per id.
Status ConvertLlama2c(const std::string& checkpoint_path, const std::string& tokenizer_path,
                      const std::string& out_path);

}  // namespace sparkv

// `sparkv convert-llama2c` and `sparkv make-model`: producing GGUF models.
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "model/llama2c.h"
#include "model/synthetic.h"

namespace sparkv::cli {

void AddConvertCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string checkpoint;
    std::string tokenizer;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand("convert-llama2c", "Convert a llama2.c checkpoint to an F32 GGUF");
  command->add_option("CHECKPOINT", flags->checkpoint, "llama2.c checkpoint (.bin)")->required()->check(CLI::ExistingFile);
  command->add_option("--tokenizer", flags->tokenizer,
                      "llama2.c tokenizer.bin; without it the GGUF gets one placeholder piece per id")
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", flags->out, "GGUF file to write")->required();
  command->callback([flags, exit_code] {
    *exit_code = ReportError(ConvertLlama2c(flags->checkpoint, flags->tokenizer, flags->out));
    if (*exit_code == 0) std::printf("wrote %s\n", flags->out.c_str());
  });
}

void AddMakeModelCommand(CLI::App& app, int* exit_code) {
  struct Flags {
    std::string shape = "tinyllama-1.1b";
    std::string type = "q8_0";
    uint64_t seed = 1;
    std::string vocab_from;
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  std::string shapes;
  for (const std::string& name : ModelShapeNames()) shapes += (shapes.empty() ? "" : ", ") + name;
  CLI::App* command = app.add_subcommand(
      "make-model", "Write a deterministic random-weight GGUF with the shape of a real model");
  command->add_option("--shape", flags->shape,
                      "Model shape: " + shapes +
                          ". qwen2.5-0.5b runs as the llama architecture (no QKV biases, 32000-token "
                          "vocabulary), as our llama.cpp comparison does; qwen3-0.6b and llama-3.2-1b "
                          "keep their own architectures and vocabularies")
      ->capture_default_str();
  command->add_option("--type", flags->type, "Weight type of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, "
                      "or q4_k_m (q4_k with q6_k for the classifier and some attn_v and ffn_down matrices). "
                      "K-quants fall back to q8_0 for matrices whose rows are not a multiple of 256")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"}));
  command->add_option("--seed", flags->seed, "Random seed; the same seed gives the same file")->capture_default_str();
  command->add_option("--vocab-from", flags->vocab_from,
                      "GGUF whose vocabulary to use instead of the built-in byte-level one")
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", flags->out, "GGUF file to write")->required();
  command->callback([flags, exit_code] {
    SyntheticModelOptions options;
    options.shape = flags->shape;
    options.seed = flags->seed;
    options.vocab_from = flags->vocab_from;
    options.type = flags->type == "f32"    ? gguf::TensorType::kF32
                   : flags->type == "f16"  ? gguf::TensorType::kF16
                   : flags->type == "bf16" ? gguf::TensorType::kBF16
                   : flags->type == "q4_0" ? gguf::TensorType::kQ4_0
                   : flags->type == "q4_k" || flags->type == "q4_k_m" ? gguf::TensorType::kQ4_K
                   : flags->type == "q6_k" ? gguf::TensorType::kQ6_K
                                           : gguf::TensorType::kQ8_0;
    options.q4_k_m_mix = flags->type == "q4_k_m";
    *exit_code = ReportError(WriteSyntheticModel(options, flags->out));
    if (*exit_code == 0) std::printf("wrote %s\n", flags->out.c_str());
  });
}

}  // namespace sparkv::cli

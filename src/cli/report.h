// Printing run reports as text and JSON.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "model/model.h"
#include "runtime/session.h"

namespace sparkv::cli {

// Counts the streamed chunks per codec level, e.g. {"f16": 2, "q8": 5}. Computed chunks are not counted.
std::map<std::string, int32_t> StreamedCodecCounts(const RunReport& report);

nlohmann::json RunReportJson(const RunReport& report, const std::string& text);

// Multi-line human-readable breakdown of one run.
void PrintRunReport(const RunReport& report, const std::string& text);

// The generated text; the ids when the model's vocabulary has no tokenizer this build runs.
std::string GeneratedText(const Model& model, const RunReport& report);

}  // namespace sparkv::cli

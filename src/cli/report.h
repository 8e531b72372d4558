// Printing run reports as text and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/model.h"
#include "runtime/session.h"

namespace sparkv::cli {

nlohmann::json RunReportJson(const RunReport& report, const std::string& text);

// Multi-line human-readable breakdown of one run.
void PrintRunReport(const RunReport& report, const std::string& text);

// The generated text; the ids when the model's vocabulary has no tokenizer this build runs.
std::string GeneratedText(const Model& model, const RunReport& report);

}  // namespace sparkv::cli

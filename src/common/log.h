// The project's one logging facility: leveled, printf-style, thread-safe, to stderr.
// Sizes and choices go out once at INFO, per-chunk detail at DEBUG, every handled error at WARN.
#pragma once

#include <string_view>

namespace sparkv {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);

// Parses "debug", "info", "warn", "error" or "off"; returns false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);

void LogMessage(LogLevel level, const char* function, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace sparkv

#define SPARKV_LOG(level, ...)                                              \
  do {                                                                      \
    if (::sparkv::LogEnabled(level)) ::sparkv::LogMessage(level, __func__, __VA_ARGS__); \
  } while (0)
#define SPARKV_LOG_DEBUG(...) SPARKV_LOG(::sparkv::LogLevel::kDebug, __VA_ARGS__)
#define SPARKV_LOG_INFO(...) SPARKV_LOG(::sparkv::LogLevel::kInfo, __VA_ARGS__)
#define SPARKV_LOG_WARN(...) SPARKV_LOG(::sparkv::LogLevel::kWarn, __VA_ARGS__)
#define SPARKV_LOG_ERROR(...) SPARKV_LOG(::sparkv::LogLevel::kError, __VA_ARGS__)

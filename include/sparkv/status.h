// Error values used at every module and network edge. Exceptions never cross the public API:
// a failed operation returns a Status (or a Result<T> holding one) whose message names the value
// that was wrong and what to do about it.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sparkv {

// Never renumber: codes appear in logs and in the JSON reports of `sparkv run`.
enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidArgument = 1,  // the caller passed a bad value (flag, path, shape)
  kNotFound = 2,         // a file, key, tensor or URL does not exist
  kCorruption = 3,       // stored bytes fail a magic, size or checksum check
  kIoError = 4,          // the operating system failed a read, write or mmap
  kUnavailable = 5,      // a server or connection could not be reached
  kTimeout = 6,          // an operation ran past its deadline
  kMismatch = 7,         // valid data that belongs to another model, key or shape
  kCancelled = 8,        // the caller stopped the operation
  kUnsupported = 9,      // a valid input this build does not handle (architecture, type)
  kInternal = 10,        // a broken invariant inside SparKV
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "corruption: blob 3f2a...: checksum mismatch", or "ok".
  std::string ToString() const;

  // Returns a copy whose message starts with `context`, e.g. the file being read.
  Status WithContext(std::string_view context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status CorruptionError(std::string m) { return {ErrorCode::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status TimeoutError(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
inline Status MismatchError(std::string m) { return {ErrorCode::kMismatch, std::move(m)}; }
inline Status CancelledError(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
inline Status UnsupportedError(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }
inline Status InternalError(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok() && "Result built from an ok Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }

  // REQUIRES: !ok() for a meaningful status; returns Ok otherwise.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(state_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace sparkv

#define SPARKV_CONCAT_INNER(a, b) a##b
#define SPARKV_CONCAT(a, b) SPARKV_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not ok.
#define SPARKV_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::sparkv::Status sparkv_status_ = (expr);     \
    if (!sparkv_status_.ok()) return sparkv_status_; \
  } while (0)

// Declares `lhs` from the value of a Result, or returns its Status from the enclosing function.
#define SPARKV_ASSIGN_OR_RETURN(lhs, expr) \
  SPARKV_ASSIGN_OR_RETURN_IMPL(SPARKV_CONCAT(sparkv_result_, __LINE__), lhs, expr)
#define SPARKV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

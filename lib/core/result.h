// Result<T>: a value or an Error. Library code returns these; only main() prints and exits.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace xnat {

enum class ErrorKind {
    invalid_input, // bad argument, config or interface: the user can fix the input
    system,        // the kernel or the system refused: exit 1
};

struct Error {
    std::string message;
    ErrorKind kind = ErrorKind::system;
    int errno_code = 0;
};

inline Error invalid_input(std::string message)
{
    return Error{std::move(message), ErrorKind::invalid_input, 0};
}

inline Error system_error(std::string message, int errno_code = 0)
{
    return Error{std::move(message), ErrorKind::system, errno_code};
}

// Prefixes an error with where it happened ("port_forwards[1].from: ...").
inline Error with_context(const std::string &context, Error e)
{
    e.message = context + ": " + e.message;
    return e;
}

template <typename T> class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }
    T &value() & { return std::get<T>(v_); }
    const T &value() const & { return std::get<T>(v_); }
    T &&value() && { return std::get<T>(std::move(v_)); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    const Error &error() const { return std::get<Error>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : e_(std::move(error)) {}

    bool ok() const { return !e_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error &error() const { return *e_; }

  private:
    std::optional<Error> e_;
};

} // namespace xnat

// Positions of JSON syntax errors as line and column, for messages about files people edit. The
// parsers in plan/, store/ and bench/ report these instead of the JSON library's exception text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sparkv {

// "line L, column C" for the byte the parser stopped at. `byte` counts from 1, as
// nlohmann::json::parse_error::byte does; 0 or a position past the end names the end of the text.
std::string JsonErrorPlace(std::string_view text, size_t byte);

}  // namespace sparkv

// The demo's default context: an original technical passage, repeated with numbered sections
// until it reaches the requested token count.
#pragma once

#include <string>

namespace sparkv::cli {

// About `n_paragraphs` paragraphs of English text; deterministic.
std::string DemoContextText(int n_paragraphs);

}  // namespace sparkv::cli

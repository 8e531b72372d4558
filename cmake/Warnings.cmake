# Compiler flags shared by every target of the project.
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter)
if(SPARKV_WERROR)
  add_compile_options(-Werror)
endif()

# Kernels pick their instruction set at run time; only files that ask for it get -mavx2 and friends.
if(SPARKV_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# GCC 12 at -O3 reports -Wrestrict on ordinary std::string concatenation (GCC bug 105329, a false
# positive inside libstdc++'s char_traits); it would turn every error-message builder into a build
# failure under -Werror.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  add_compile_options(-Wno-restrict)
endif()

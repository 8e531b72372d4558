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

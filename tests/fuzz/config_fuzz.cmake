# libFuzzer target for the config parser (tests/fuzz/config_fuzz.cpp). The main build uses g++,
# which has no libFuzzer, so this is compiled by clang++ directly, and only where clang++ links
# -fsanitize=fuzzer (Debian: clang-14 and libclang-rt-14-dev). Elsewhere it is skipped with a
# note. Run longer by hand: tests/config_fuzz -max_total_time=600 CORPUS_DIR tests/fuzz/corpus/config
find_program(XNAT_FUZZ_CXX NAMES clang++ clang++-14)
if(XNAT_FUZZ_CXX AND NOT DEFINED XNAT_FUZZ_WORKS)
  set(probe ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe)
  file(WRITE ${probe}.cpp
       "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t *, size_t) { return 0; }\n")
  execute_process(COMMAND ${XNAT_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${probe}.cpp -o ${probe}
                  RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(probe_rc EQUAL 0)
    set(XNAT_FUZZ_WORKS ON CACHE INTERNAL "clang++ links libFuzzer")
  else()
    set(XNAT_FUZZ_WORKS OFF CACHE INTERNAL "clang++ links libFuzzer")
  endif()
endif()

# scripts/test.sh (and so CI) sets XNAT_REQUIRE_FUZZ: there a missing libFuzzer is an error, not a
# quietly skipped test layer.
option(XNAT_REQUIRE_FUZZ "fail the configure step when the config fuzzer cannot be built" OFF)
if(NOT XNAT_FUZZ_WORKS AND XNAT_REQUIRE_FUZZ)
  message(FATAL_ERROR "XNAT_REQUIRE_FUZZ: no clang++ that links -fsanitize=fuzzer (install clang and libclang-rt-14-dev)")
endif()
if(NOT XNAT_FUZZ_WORKS)
  message(STATUS "config fuzzer skipped: no clang++ with -fsanitize=fuzzer (install clang and libclang-rt-dev)")
  return()
endif()

set(fuzz_flags -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -I${CMAKE_SOURCE_DIR}/lib -I${CMAKE_SOURCE_DIR}/include)
file(GLOB fuzz_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/lib/core/*.h ${CMAKE_SOURCE_DIR}/include/xnat/*.h)
set(fuzz_objects)
# One object per source, so a change recompiles one file and -j runs them side by side.
foreach(src tests/fuzz/config_fuzz.cpp lib/core/nat_config.cpp lib/core/strict_json.cpp lib/core/json_fields.cpp
        lib/core/net.cpp lib/core/forward_table.cpp lib/core/masquerade.cpp)
  get_filename_component(stem ${src} NAME_WE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz_objs/${stem}.o)
  add_custom_command(OUTPUT ${obj}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz_objs
                     COMMAND ${XNAT_FUZZ_CXX} ${fuzz_flags} -c ${CMAKE_SOURCE_DIR}/${src} -o ${obj}
                     DEPENDS ${CMAKE_SOURCE_DIR}/${src} ${fuzz_headers}
                     COMMENT "clang++ (libFuzzer) ${src}" VERBATIM)
  list(APPEND fuzz_objects ${obj})
endforeach()
add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz
                   COMMAND ${XNAT_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${fuzz_objects}
                           -o ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz
                   DEPENDS ${fuzz_objects} COMMENT "linking config_fuzz" VERBATIM)
add_custom_target(config_fuzz ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz)

# A short run on every ctest: the seed corpus, then 20000 generated inputs. New inputs go to the
# first corpus directory and findings (crash-*) next to the binary: the source tree stays as is.
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz_corpus)
add_test(NAME "fuzz: config parser (20000 runs)"
         COMMAND ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz -runs=20000 -max_len=4096 -timeout=10
                 -rss_limit_mb=2048 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/config_fuzz-
                 ${CMAKE_CURRENT_BINARY_DIR}/config_fuzz_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/config)
set_tests_properties("fuzz: config parser (20000 runs)" PROPERTIES TIMEOUT 300)

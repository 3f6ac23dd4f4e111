# libFuzzer targets: the config parser (tests/fuzz/config_fuzz.cpp) and the port-mapping request
# decoders (tests/fuzz/portmap_fuzz.cpp). The main build uses g++, which has no libFuzzer, so
# these are compiled by clang++ directly, and only where clang++ links -fsanitize=fuzzer (Debian:
# clang-14 and libclang-rt-14-dev). Elsewhere they are skipped with a note. Run longer by hand:
# tests/config_fuzz -max_total_time=600 CORPUS_DIR tests/fuzz/corpus/config
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

# xnat_fuzzer(NAME CORPUS WHAT RUNS HEADER_GLOB SOURCES...): NAME built by clang++ from SOURCES
# (relative to the source tree), and a ctest "fuzz: WHAT" that runs the seed corpus
# tests/fuzz/corpus/CORPUS, then RUNS
# generated inputs. New inputs go to a corpus directory in the build tree and findings (crash-*)
# next to the binary: the source tree stays as is.
function(xnat_fuzzer name corpus what runs header_glob)
  file(GLOB headers CONFIGURE_DEPENDS ${header_glob} ${CMAKE_SOURCE_DIR}/include/xnat/*.h)
  set(objects)
  # One object per source, so a change recompiles one file and -j runs them side by side.
  foreach(src ${ARGN})
    get_filename_component(stem ${src} NAME_WE)
    set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}_objs/${stem}.o)
    add_custom_command(OUTPUT ${obj}
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/${name}_objs
                       COMMAND ${XNAT_FUZZ_CXX} ${fuzz_flags} -c ${CMAKE_SOURCE_DIR}/${src} -o ${obj}
                       DEPENDS ${CMAKE_SOURCE_DIR}/${src} ${headers}
                       COMMENT "clang++ (libFuzzer) ${src}" VERBATIM)
    list(APPEND objects ${obj})
  endforeach()
  set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name})
  add_custom_command(OUTPUT ${bin} COMMAND ${XNAT_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${objects} -o ${bin}
                     DEPENDS ${objects} COMMENT "linking ${name}" VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${bin})
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  set(test "fuzz: ${what} (${runs} runs)")
  add_test(NAME ${test}
           COMMAND ${bin} -runs=${runs} -max_len=4096 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=${bin}-
                   ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${corpus})
  set_tests_properties(${test} PROPERTIES TIMEOUT 300)
endfunction()

# The config parser: what `xnat-load --check` and every load read.
xnat_fuzzer(config_fuzz config "config parser" 20000 ${CMAKE_SOURCE_DIR}/lib/core/*.h
            tests/fuzz/config_fuzz.cpp lib/core/nat_config.cpp lib/core/strict_json.cpp lib/core/json_fields.cpp
            lib/core/net.cpp lib/core/forward_table.cpp lib/core/masquerade.cpp lib/core/port_mapping.cpp)
# The NAT-PMP and PCP request decoders: what any LAN host can send to port 5351.
xnat_fuzzer(portmap_fuzz portmap "NAT-PMP and PCP requests" 2000000 ${CMAKE_SOURCE_DIR}/lib/portmap/*.h
            tests/fuzz/portmap_fuzz.cpp lib/portmap/natpmp_wire.cpp lib/portmap/pcp_wire.cpp
            lib/portmap/mapping_table.cpp lib/portmap/request_handler.cpp)

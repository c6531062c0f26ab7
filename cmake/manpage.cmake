# Writes the man page gatehouse.1: the template packaging/gatehouse.1.in with the built binary's
# own --version and --help text (the top level and each subcommand) filled in. Needs nothing but
# CMake and the binary, so a plain build never lacks a tool for it.
#   cmake -DGATEHOUSE=path/to/gatehouse -DTEMPLATE=packaging/gatehouse.1.in -DOUT=gatehouse.1
#         -DSYSCONFDIR=/etc -DDOCDIR=/usr/share/doc/gatehouse -P cmake/manpage.cmake
foreach(var GATEHOUSE TEMPLATE OUT SYSCONFDIR DOCDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "manpage.cmake: -D${var}=... is required")
  endif()
endforeach()

# The binary, run without leak checking (a sanitizer build's exit must not fail the build).
set(run "${CMAKE_COMMAND}" -E env ASAN_OPTIONS=detect_leaks=0 "${GATEHOUSE}")

# Text as roff shows it verbatim: backslashes escaped, "-" kept a minus sign (so that options
# copied from the page work), and no line read as a request.
function(roff_text text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REPLACE "\n." "\n\\&." text "\n${text}")
  string(REPLACE "\n'" "\n\\&'" text "${text}")
  string(SUBSTRING "${text}" 1 -1 text)
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(help_of out)
  execute_process(COMMAND ${run} ${ARGN} --help
                  OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR text STREQUAL "")
    message(FATAL_ERROR "manpage.cmake: `gatehouse ${ARGN} --help` failed (${rc}): ${err}")
  endif()
  string(REGEX REPLACE "\n+$" "" text "${text}")
  string(REPLACE "${GATEHOUSE}" "gatehouse" text "${text}")  # "Usage: /build/path/gatehouse ..."
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

execute_process(COMMAND ${run} --version
                OUTPUT_VARIABLE VERSION RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT VERSION MATCHES "^gatehouse ")
  message(FATAL_ERROR "manpage.cmake: `gatehouse --version` failed (${rc}): ${VERSION}")
endif()
string(REGEX REPLACE "\n.*" "" VERSION "${VERSION}")  # its first line: "gatehouse X.Y.Z"

help_of(top)
# The subcommands are the indented names under "Subcommands:" (CLI11's layout).
string(REGEX MATCH "\n[Ss]ubcommands:\n(.*)" section "${top}")
string(REGEX MATCHALL "\n  [a-z][a-z-]* " names "\n${CMAKE_MATCH_1}")
if(names STREQUAL "")
  message(FATAL_ERROR "manpage.cmake: no subcommands found in `gatehouse --help`:\n${top}")
endif()

roff_text("${top}" text)
set(COMMANDS ".nf\n${text}\n.fi\n")
foreach(entry IN LISTS names)
  string(STRIP "${entry}" name)
  help_of(help ${name})
  roff_text("${help}" text)
  string(APPEND COMMANDS ".SS gatehouse ${name}\n.nf\n${text}\n.fi\n")
endforeach()
string(REGEX REPLACE "\n$" "" COMMANDS "${COMMANDS}")

configure_file("${TEMPLATE}" "${OUT}" @ONLY)

# cmake -DOUTPUT=file.cc -DASSET_DIR=dir -DNAMES=a.html,b.js -P embed_assets.cmake
# Writes a C++ source that holds each named file of ASSET_DIR as a byte string, for
# gh::admin::assets() (src/admin/assets.h). Run at build time by src/admin/CMakeLists.txt, so an
# edited asset is rebuilt into the binary; needs nothing but CMake (no xxd).
# Served path: "/" + the file name, except index.html, which is "/".
cmake_minimum_required(VERSION 3.25)
if(NOT OUTPUT OR NOT ASSET_DIR OR NOT NAMES)
  message(FATAL_ERROR "embed_assets.cmake: OUTPUT, ASSET_DIR and NAMES are required")
endif()
string(REPLACE "," ";" names "${NAMES}")

# 64 bytes (128 hex digits) per line of the generated string literal.
string(REPEAT "[0-9a-f]" 128 line_pattern)

set(arrays "")
set(table "")
set(index 0)
foreach(name IN LISTS names)
  set(file "${ASSET_DIR}/${name}")
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "embed_assets.cmake: ${file} does not exist")
  endif()
  get_filename_component(ext "${name}" LAST_EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  elseif(ext STREQUAL ".png")
    set(type "image/png")
  else()
    message(FATAL_ERROR "embed_assets.cmake: no content type known for ${name}")
  endif()
  if(name STREQUAL "index.html")
    set(path "/")
  else()
    set(path "/${name}")
  endif()

  file(READ "${file}" hex HEX)
  # One source line per 64 bytes, then every byte as a \xNN escape (each escape is followed by a
  # backslash or a quote, so no escape runs into the next byte).
  string(REGEX REPLACE "(${line_pattern})" "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" hex "${hex}")
  string(REGEX REPLACE "\n$" "" hex "${hex}")
  string(REPLACE "\n" "\"\n    \"" hex "${hex}")
  string(APPEND arrays "// ${name}\nconst char k${index}[] =\n    \"${hex}\";\n\n")
  string(APPEND table "    {\"${path}\", \"${type}\", {k${index}, sizeof(k${index}) - 1}},\n")
  math(EXPR index "${index} + 1")
endforeach()

file(WRITE "${OUTPUT}" "// Generated at build time by cmake/embed_assets.cmake from src/admin/assets/: do not edit.
#include \"admin/assets.h\"

namespace gh::admin {
namespace {

${arrays}const Asset kAssets[] = {
${table}};

}  // namespace

std::span<const Asset> assets() { return kAssets; }

}  // namespace gh::admin
")

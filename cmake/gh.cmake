# gh_library(NAME SOURCES ... DEPS ...): one folder of src/ as its own static library.
function(gh_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(gh_${name} STATIC ${A_SOURCES})
  target_include_directories(gh_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(gh_${name} PUBLIC ${A_DEPS})
endfunction()

# gh_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
function(gh_test name)
  if(NOT GH_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 600)
endfunction()

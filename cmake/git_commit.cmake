# GH_GIT_COMMIT: the commit the sources are checked out at, for `gatehouse --version`; "unknown"
# outside a git checkout. Read at configure time; a new commit or checkout re-runs the configure
# step (the files git moves are configure dependencies), so the build never reports a stale one.
set(GH_GIT_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE _gh_commit OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _gh_rc ERROR_QUIET)
  if(_gh_rc EQUAL 0 AND _gh_commit)
    set(GH_GIT_COMMIT ${_gh_commit})
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --symbolic-full-name HEAD
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    OUTPUT_VARIABLE _gh_ref OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    set(_gh_watch HEAD packed-refs)
    if(_gh_ref MATCHES "^refs/")
      list(APPEND _gh_watch ${_gh_ref})
    endif()
    foreach(_gh_name IN LISTS _gh_watch)
      execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --path-format=absolute --git-path ${_gh_name}
                      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                      OUTPUT_VARIABLE _gh_path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(_gh_path AND EXISTS "${_gh_path}")
        set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_gh_path}")
      endif()
    endforeach()
  endif()
endif()

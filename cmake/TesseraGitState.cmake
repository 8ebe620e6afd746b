# Run at every build (cmake -P): writes OUTPUT, a header naming the commit of SOURCE and whether
# its tree has uncommitted changes (tracked or untracked, not ignored), and rewrites it only when
# that changed, so that a build of an unchanged tree recompiles nothing.
set(commit unknown)
set(changed_files -1)  # not a git checkout
set(diff_hash "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD WORKING_DIRECTORY ${SOURCE}
                  RESULT_VARIABLE status OUTPUT_VARIABLE head
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(status EQUAL 0 AND head)
    set(commit ${head})
    execute_process(COMMAND ${GIT_EXECUTABLE} status --porcelain WORKING_DIRECTORY ${SOURCE}
                    OUTPUT_VARIABLE porcelain ERROR_QUIET)
    string(REGEX MATCHALL "[^\n]+" lines "${porcelain}")
    list(LENGTH lines changed_files)
    if(changed_files GREATER 0)
      # A name for these changes: the hash of the diff against HEAD and of the untracked list.
      execute_process(COMMAND ${GIT_EXECUTABLE} diff HEAD WORKING_DIRECTORY ${SOURCE}
                      OUTPUT_VARIABLE diff ERROR_QUIET)
      string(SHA256 diff_hash "${diff}${porcelain}")
      string(SUBSTRING ${diff_hash} 0 16 diff_hash)
    endif()
  endif()
endif()
set(text "// Generated at build time by cmake/TesseraGitState.cmake: the tree this build is from.
#define TESSERA_GIT_COMMIT \"${commit}\"
#define TESSERA_GIT_CHANGED_FILES ${changed_files}
#define TESSERA_GIT_CHANGES_HASH \"${diff_hash}\"
")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUTPUT} "${text}")
endif()

# Runs one golden case: golden_dump writes it into CASE_DIR, then test_golden.py checks it.
# cmake -DDUMP=<golden_dump> -DCASE=<name> -DCASE_DIR=<dir> -DPYTHON=<python3> -DSCRIPT=<test_golden.py>
#       -P run_golden_case.cmake
file(REMOVE_RECURSE ${CASE_DIR})
execute_process(COMMAND ${DUMP} ${CASE} ${CASE_DIR} RESULT_VARIABLE dump_status)
if(NOT dump_status EQUAL 0)
  message(FATAL_ERROR "golden_dump ${CASE} failed (${dump_status})")
endif()
execute_process(COMMAND ${PYTHON} ${SCRIPT} ${CASE_DIR} RESULT_VARIABLE check_status)
if(NOT check_status EQUAL 0)
  message(FATAL_ERROR "test_golden.py found a mismatch in ${CASE} (${check_status})")
endif()

# ctest cmake_stale_part_cache: configures the project in WORK over a CMakeCache.txt that an earlier
# configure without Qt left (option() cached `SCALEPLAN_WITH_GUI:BOOL=OFF`), and checks that the
# part is decided anew: GUI=ON when Qt6 is found now (QT_FOUND, from the project's own configure), as
# it is wherever `make deps` ran; where Qt6 is not installed the decision must be OFF, without an error.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/CMakeCache.txt "//Build the Qt6 GUI\nSCALEPLAN_WITH_GUI:BOOL=OFF\n")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${WORK} -DSCALEPLAN_BUILD_TESTS=OFF -DSCALEPLAN_BUILD_BENCH=OFF
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed (${rc}):\n${out}\n${err}")
endif()
file(READ ${WORK}/scaleplan_parts.txt parts)
if(QT_FOUND AND NOT parts MATCHES "GUI=ON")
  message(FATAL_ERROR "Qt6 is installed but the stale cached OFF kept the GUI off:\n${parts}")
endif()
if(NOT QT_FOUND AND NOT parts MATCHES "GUI=OFF")
  message(FATAL_ERROR "Qt6 is not installed but the GUI part is ON:\n${parts}")
endif()
file(REMOVE_RECURSE ${WORK})
message(STATUS "parts after a stale cache: ${parts}")

# Builds and runs examples/consumer against cwcl, one of two ways (the ctest tests consumer.*):
#   MODE=find_package    install the already-built tree CWCL_BUILD_DIR into WORK_DIR/prefix,
#                        then configure the consumer with CMAKE_PREFIX_PATH pointing there;
#   MODE=add_subdirectory configure the consumer with CWCL_SOURCE_DIR (CUDA off) and build only
#                        its target, so only the libraries it links are compiled.
# Usage: cmake -DMODE=... -DCWCL_SOURCE_DIR=... -DCWCL_BUILD_DIR=... -DWORK_DIR=...
#              -DCXX_COMPILER=... -DGENERATOR=... [-DBUILD_TYPE=...] [-DCXX_FLAGS=...] [-DJOBS=2]
#              -P build_consumer.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var MODE CWCL_SOURCE_DIR WORK_DIR CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_consumer: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED JOBS)
  set(JOBS 2)
endif()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

# Runs a command, echoing it; any failure ends the script with its output.
function(run what)
  message(STATUS "build_consumer: ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "build_consumer: ${what} failed (${rc}):\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
           "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")

if(MODE STREQUAL "find_package")
  if(NOT DEFINED CWCL_BUILD_DIR)
    message(FATAL_ERROR "build_consumer: MODE=find_package needs -DCWCL_BUILD_DIR=...")
  endif()
  run("install" ${CMAKE_COMMAND} --install ${CWCL_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  # The install must hold the package files and the headers in their include layout.
  file(GLOB_RECURSE config_files RELATIVE ${WORK_DIR}/prefix ${WORK_DIR}/prefix/*/cwclConfig*.cmake)
  if(NOT config_files MATCHES "cmake/cwcl/cwclConfig.cmake" OR NOT config_files MATCHES "cwclConfigVersion")
    message(FATAL_ERROR "build_consumer: the install has no cwclConfig.cmake and version file: ${config_files}")
  endif()
  foreach(f core/tensor.h core/cpu/strided_loop.h autograd/variable.h nn/module.h data/model_files.h
            losses/contrastive_loss.h models/text_transformer.h)
    if(NOT EXISTS ${WORK_DIR}/prefix/include/${f})
      message(FATAL_ERROR "build_consumer: the install has no include/${f}")
    endif()
  endforeach()
  run("configure" ${CMAKE_COMMAND} -S ${CWCL_SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/build ${common}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "add_subdirectory")
  run("configure" ${CMAKE_COMMAND} -S ${CWCL_SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/build ${common}
      -DCWCL_SOURCE_DIR=${CWCL_SOURCE_DIR} -DCW_CUDA=OFF)
else()
  message(FATAL_ERROR "build_consumer: MODE must be find_package or add_subdirectory, not '${MODE}'")
endif()

run("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build --target consumer --parallel ${JOBS})
run("run" ${WORK_DIR}/build/consumer)
message(STATUS "${last_output}")
if(NOT last_output MATCHES "consumer: ok")
  message(FATAL_ERROR "build_consumer: the consumer did not print 'consumer: ok'")
endif()
file(REMOVE_RECURSE ${WORK_DIR})

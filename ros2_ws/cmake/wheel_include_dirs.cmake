# Injected into every package of this workspace with -DCMAKE_PROJECT_INCLUDE when the ROS 2
# interfaces come from PyPI wheels (`make setup`). It is not needed, and not used, against a
# system ROS 2 install.
#
# The wheels' exported CMake targets (e.g. std_msgs::std_msgs__rosidl_generator_py) carry the
# include directories of the machine that built them (/opt/python/cp311-cp311/...). CMake
# refuses imported targets whose include directories do not exist. At the end of the
# top-level CMakeLists.txt (after every find_package) this replaces such directories with the
# Python and NumPy include directories found here.
cmake_minimum_required(VERSION 3.19)

function(_interactvlm_fix_wheel_include_dirs)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_fixed "")
    set(_changed FALSE)
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "^/opt/python/[^/]+/include/")
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
        set(_changed TRUE)
      elseif(_dir MATCHES "^/opt/python/.*/numpy/.*include$")
        list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
        set(_changed TRUE)
      else()
        list(APPEND _fixed "${_dir}")
      endif()
    endforeach()
    if(_changed)
      list(REMOVE_DUPLICATES _fixed)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
    endif()
  endforeach()
endfunction()

if(CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _interactvlm_fix_wheel_include_dirs)
endif()

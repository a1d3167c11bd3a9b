# SPDX-License-Identifier: MIT
# Makes docs/deploy.md from docs/deploy.md.in: each line "{{config NAME}}" becomes the config
# template tests/interop/configs/NAME (the one the interop tests run) with the deployment
# values below in place of its {{placeholders}}. So the configs in the guide are the tested
# ones and cannot drift.
#
#   cmake -P scripts/deploy_doc.cmake              writes docs/deploy.md
#   cmake -DCHECK=ON -P scripts/deploy_doc.cmake   fails when docs/deploy.md is not what it
#                                                  would write (a ctest test runs this)
cmake_minimum_required(VERSION 3.21)

set(root "${CMAKE_CURRENT_LIST_DIR}/..")
set(configs "${root}/tests/interop/configs")
set(output "${root}/docs/deploy.md")

# The deployment the guide describes: the application on 127.0.0.1:9000, the web server on
# port 80 of every interface.
set(value_fcgi_host "127.0.0.1")
set(value_fcgi_port "9000")
set(value_http_host "0.0.0.0")
set(value_http_port "80")
set(value_app "/usr/local/bin/app")
set(value_user "www-data")
set(value_web_server_addrs "127.0.0.1")
set(value_authorizer_socket "/run/app/authorizer.sock")
set(value_docroot "/srv/www")
# Scaling out: the application on two machines (documentation addresses, RFC 5737).
set(value_app1_host "192.0.2.11")
set(value_app1_port "9000")
set(value_app2_host "192.0.2.12")
set(value_app2_port "9000")

file(READ "${root}/docs/deploy.md.in" document)
string(REGEX MATCHALL "{{config [^}]+}}" includes "${document}")
list(REMOVE_DUPLICATES includes)
foreach(include IN LISTS includes)
  string(REGEX REPLACE "^{{config ([^}]+)}}$" "\\1" name "${include}")
  if(NOT EXISTS "${configs}/${name}")
    message(FATAL_ERROR "docs/deploy.md.in names ${name}, which is not in ${configs}")
  endif()
  file(READ "${configs}/${name}" config)
  string(REGEX MATCHALL "{{[a-z0-9_]+}}" keys "${config}")
  list(REMOVE_DUPLICATES keys)
  foreach(key IN LISTS keys)
    string(REGEX REPLACE "^{{(.*)}}$" "\\1" key_name "${key}")
    if(NOT DEFINED value_${key_name})
      message(FATAL_ERROR "${name}: no deployment value for ${key} in ${CMAKE_CURRENT_LIST_FILE}")
    endif()
    string(REPLACE "${key}" "${value_${key_name}}" config "${config}")
  endforeach()
  string(REGEX REPLACE "\n$" "" config "${config}")
  string(REPLACE "${include}" "${config}" document "${document}")
endforeach()
string(FIND "${document}" "{{" left)
if(NOT left EQUAL -1)
  string(SUBSTRING "${document}" ${left} 40 context)
  message(FATAL_ERROR "a placeholder is left in docs/deploy.md: ${context}")
endif()
string(PREPEND document
  "<!-- Made by scripts/deploy_doc.cmake from docs/deploy.md.in and tests/interop/configs/: "
  "edit those, then run cmake -P scripts/deploy_doc.cmake. -->\n")

if(CHECK)
  file(READ "${output}" committed)
  if(NOT committed STREQUAL document)
    message(FATAL_ERROR "docs/deploy.md differs from what docs/deploy.md.in and "
                        "tests/interop/configs/ make: run cmake -P scripts/deploy_doc.cmake")
  endif()
else()
  file(WRITE "${output}" "${document}")
endif()

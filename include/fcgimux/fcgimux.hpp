// SPDX-License-Identifier: MIT
#pragma once

#include "fcgimux/config.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/http.hpp"
#include "fcgimux/log.hpp"
#include "fcgimux/protocol.hpp"
#include "fcgimux/request.hpp"
#include "fcgimux/response.hpp"
#include "fcgimux/server.hpp"

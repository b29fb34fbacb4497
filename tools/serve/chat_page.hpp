// The chat page served at GET / (tools/serve/chat_page.html, compiled in at build time).
#pragma once

#include <string_view>

namespace brise::serve {
std::string_view chat_page();
}

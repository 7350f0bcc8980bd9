#pragma once
// Captures as Chrome trace JSON (the "Trace Event Format" that Perfetto and chrome://tracing
// open): complete events (ph "X") with ts/dur in microseconds, one tid per lane named by a
// thread_name metadata event. Stage, layer and token travel in each event's cat and args, so
// that a file this writes reads back into the same capture.
#include <string>
#include <string_view>

#include "core/trace.h"

namespace moe::trace {

std::string to_chrome_json(const Capture& capture);
// Reads a Chrome trace (an object with "traceEvents", or a bare event array). Events other
// than complete ("X") and begin/end ("B"/"E") pairs are ignored; unknown categories become
// Stage::Other. Throws moe::Error on malformed JSON.
Capture from_chrome_json(std::string_view json);

}  // namespace moe::trace

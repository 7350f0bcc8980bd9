#!/usr/bin/env bash
# Takes the README's screenshots from the real app under Xvfb (apt: xvfb): a model answering a
# prompt, light and dark, the model map, the profiler, the fine-tune wizard and the training
# monitor, into docs/screenshots/ — stories260K with four experts from ../shared when it is
# there (a real, tiny trained model: English text), else the built-in demo model (noise). Needs a build with Qt Widgets (MOE_BUILD_DIR, default build-ci).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${MOE_BUILD_DIR:-build-ci}
cmake --build "$B" --target moestudio demo-model > /dev/null
mkdir -p docs/screenshots
MODEL=()
PROMPT="Tell me a story about a dragon who learned to code."
STORIES=../shared/fixtures/stories260K/stories260K-moe4x2-perturbed.gguf
if [ -f "$STORIES" ]; then
    MODEL=("$STORIES")
    PROMPT="Once upon a time, a little dragon"
fi
shot() {  # file theme view
    tmp=$(mktemp -d)
    HOME=$tmp XDG_RUNTIME_DIR=$tmp xvfb-run -a -s "-screen 0 1280x800x24" "$B/app/gui/moestudio" \
        --data "$tmp/data" --theme "$2" --screenshot "docs/screenshots/$1" --view "$3" \
        --prompt "$PROMPT" "${MODEL[@]}"
    rm -rf "$tmp"
}
for theme in light dark; do shot "chat-$theme.png" "$theme" chat; done
# The placement editor and the profiler (issue 9), after the same answer.
shot model-map.png light model-map
shot profiler.png dark profiler
# The fine-tune wizard's dataset page and the monitor after a short run (issue 10).
shot finetune-wizard.png light wizard
shot finetune-field-map.png light field-map
shot finetune-estimate.png light estimate
shot training-monitor.png light monitor
shot adapter-chat.png light adapter-chat
ls -la docs/screenshots

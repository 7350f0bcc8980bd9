#include "expert_assignment.h"

#include <utility>

namespace moeui {

ExpertAssignment::ExpertAssignment(ModelMapView* view, ExpertGrid before, ExpertGrid after,
                                   const QString& text)
    : view_(view), before_(std::move(before)), after_(std::move(after)) {
    setText(text);
}

void ExpertAssignment::undo() {
    view_->set_experts(before_);
}

// Also runs when the command is pushed, after a drag already showed `after`: then a no-op.
void ExpertAssignment::redo() {
    view_->set_experts(after_);
}

}  // namespace moeui

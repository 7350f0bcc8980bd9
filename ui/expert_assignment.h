#pragma once
// One undoable edit of the placement editor: the experts' devices before and after a click,
// a drag, a preset or a loaded profile. Whole grids are kept rather than the cells that
// changed: 61 x 384 flags are 23 KB, and a preset touches most of them anyway.
#include <QUndoCommand>

#include "model_map_view.h"

namespace moeui {

class ExpertAssignment : public QUndoCommand {
  public:
    ExpertAssignment(ModelMapView* view, ExpertGrid before, ExpertGrid after, const QString& text);
    void undo() override;
    void redo() override;

  private:
    ModelMapView* view_;
    ExpertGrid before_, after_;
};

}  // namespace moeui

#pragma once
// The model map dialog: the placement editor around the grid (model_map_view.h). Experts are
// moved by click or drag, by a preset from the planner's strategies filled to the GPU budget,
// or by loading a named profile; every such step can be undone (Ctrl+Z) and redone
// (Ctrl+Shift+Z). The budget bar follows each edit and, when the GPU weights exceed the budget,
// says so and Apply is refused with that reason. Save writes a placement file; Apply moves the
// loaded model's experts without a reload. Under the budget bar, the cost model's predicted
// speed of the edit (speed_panel.h) follows the edits; Export gives the edit as llama.cpp or
// sglang-kt options (placement_export_dialog.h).
//
// The dialog talks to nothing but its signals: the main window connects them to EngineHost,
// which reaches the engine through its API.
#include <QDialog>
#include <QStringList>

#include "model_map_view.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QScrollArea;
class QUndoStack;

namespace moeui {

class BudgetBar;
class PlacementExportDialog;
class SpeedPanel;

class ModelMapDialog : public QDialog {
    Q_OBJECT

  public:
    explicit ModelMapDialog(QWidget* parent = nullptr);
    ModelMapView* view() const { return view_; }
    BudgetBar* budget_bar() const { return bar_; }
    QUndoStack* undo_stack() const { return undo_; }
    QLabel* status() const { return status_; }
    QScrollArea* scroll_area() const { return scroll_; }
    SpeedPanel* speed_panel() const { return speed_; }

    // The model's placement with the experts as edited in the map (JSON; "" when none).
    QString edited_placement() const;
    // The weights the edited placement puts on the GPU.
    quint64 gpu_bytes() const;
    // Writes edited_placement() to `path` (a placement file for --placement, or to apply later).
    bool save_placement(const QString& path);

    // The GPU weight budget edits are checked against and presets fill (bytes; 0: none). It
    // starts as the budget the model was loaded with.
    quint64 budget() const { return budget_; }
    void set_budget(quint64 bytes);

    // Asks for a preset: "uniform", "frequency", "front", "back" or "balanced".
    void request_preset(const QString& strategy);
    void save_profile(const QString& name);
    void load_profile(const QString& name);
    void delete_profile(const QString& name);
    QStringList profiles() const { return profiles_; }
    // Opens the export of the edited placement (nullptr when there is none).
    PlacementExportDialog* export_placement();
    // `steps` zoom steps (positive: larger) keeping `anchor` (view coordinates) in place.
    void zoom(int steps, const QPoint& anchor);

  public slots:
    void set_data(const moeui::ModelMapData& d);
    // The engine's answer to an Apply ("" = applied).
    void applied(const QString& error);
    // The engine's answers about presets and profiles.
    void preset_planned(const QString& strategy, const QString& placement_json,
                        const QString& error);
    void set_profiles(const QStringList& names);
    void profile_loaded(const QString& name, const QString& placement_json, const QString& error);
    void profile_changed(const QString& name, const QString& error);

  signals:
    void applyRequested(const QString& placement_json);
    void presetRequested(const QString& strategy, quint64 weight_budget,
                         const QString& placement_json);
    void profilesRequested();
    void profileSaveRequested(const QString& name, const QString& placement_json);
    void profileLoadRequested(const QString& name);
    void profileDeleteRequested(const QString& name);
    // From the speed panel: a prediction of the edited placement, a calibration.
    void predictRequested(const QString& placement_json);
    void calibrateRequested();

  private:
    QWidget* make_tools();
    void update_caption();
    void update_budget();
    // Pushes the move from the current experts to those of `placement_json` as one step.
    bool adopt(const QString& placement_json, const QString& what);
    ModelMapView* view_ = nullptr;
    QScrollArea* scroll_ = nullptr;
    BudgetBar* bar_ = nullptr;
    SpeedPanel* speed_ = nullptr;
    QUndoStack* undo_ = nullptr;
    QLabel* caption_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* apply_ = nullptr;
    QComboBox* presets_ = nullptr;
    QComboBox* profile_box_ = nullptr;
    QDoubleSpinBox* budget_box_ = nullptr;
    QStringList profiles_;
    quint64 budget_ = 0;
    bool have_data_ = false;
};

}  // namespace moeui

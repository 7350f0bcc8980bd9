#pragma once
// The desktop app's side of the engine: owns the moe::Engine (its own thread) and turns its
// callbacks into Qt signals delivered on the GUI thread. Every method returns at once; the UI
// never waits for the engine, the disk or the model.
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <memory>

#include "api/engine.h"
#include "model_map_view.h"
#include "speed_panel.h"

namespace moeui {

struct MessageRow {
    qint64 id = 0;
    QString role, content;
    QString stats;  // for answers: "12 tokens · 45.1 tok/s · first token 80 ms"
    int sibling_index = 0, sibling_count = 1;
};

struct ConversationRow {
    qint64 id = 0;
    QString title;
};

struct SearchRow {
    qint64 conversation = 0, message = 0;
    QString title, snippet;
};

class EngineHost : public QObject {
    Q_OBJECT

  public:
    explicit EngineHost(const QString& store_path, QObject* parent = nullptr);
    ~EngineHost() override;

    bool busy() const { return busy_; }
    bool model_loaded() const { return model_loaded_; }
    void set_chat_settings(const moe::ChatSettings& s) { settings_ = s; }

  public slots:
    // gpu_budget_gib 0: everything on the CPU; above: planned onto the GPU (engine.h).
    // `cpu_experts`: the placement preset — "auto" (attention and dense layers on the GPU, then
    // experts while the budget lasts), "all" (every routed expert on the CPU) or "none".
    void loadModel(const QString& path, double gpu_budget_gib = 0.0,
                   const QString& cpu_experts = "auto");
    void refreshConversations();
    void newConversation();
    void openConversation(qint64 conversation);
    void send(qint64 conversation, const QString& text);
    void regenerate(qint64 assistant_message);
    void edit(qint64 user_message, const QString& text);
    void stop();
    // Shows the previous (delta -1) or next (+1) sibling branch of `message`.
    void switchBranch(qint64 message, int delta);
    void renameConversation(qint64 conversation, const QString& title);
    void deleteConversation(qint64 conversation);
    void undoDelete(qint64 conversation);
    void search(const QString& query);
    // Writes the conversation's active branch as Markdown, or the whole tree as JSON.
    void exportConversation(qint64 conversation, const QString& path, bool json);
    void importConversation(const QString& path);
    void loadSettings(qint64 conversation);
    void saveSettings(qint64 conversation, const QString& json);
    // The loaded model's placement and expert telemetry (modelMapReady).
    void requestModelMap();
    // Moves the loaded model's experts as `placement_json` says (placementApplied).
    void applyPlacement(const QString& placement_json);
    // The placement editor's preset: `placement_json` with its experts chosen again by a
    // planner strategy within `weight_budget` bytes of GPU weights (presetPlanned).
    void planPreset(const QString& strategy, quint64 weight_budget, const QString& placement_json);
    // Named placement profiles of the loaded model (placementProfiles; after a save or a
    // delete the list comes again).
    void listPlacementProfiles();
    void savePlacementProfile(const QString& name, const QString& placement_json);
    void loadPlacementProfile(const QString& name);
    void deletePlacementProfile(const QString& name);
    // Measures this machine's rates on the loaded model for predicted speeds
    // (calibrationProgress, then calibrated).
    void calibrate();
    // The cost model's figures for `placement_json` of the loaded model (placementPredicted).
    void predictPlacement(const QString& placement_json);

  public:
    // "Chat with this adapter": `prompt` answered by `model`, then by it carrying `adapter`,
    // beside the chat's model (adapterText for every piece, then adapterChatFinished). The
    // chat's sampling settings, with `max_new_tokens` and `greedy`; both sides alike. Returns
    // the request's id, which the signals carry. stop() stops it.
    qint64 chatWithAdapter(const QString& model, const QString& adapter, const QString& prompt,
                           int max_new_tokens, bool greedy);
    // Frees the adapter chat's two models.
    void closeAdapterChat();

  signals:
    void modelLoading(const QString& path);
    // permille in 0..1000, what the loader is doing.
    void loadProgress(int permille, const QString& stage);
    void modelLoaded(const QString& summary);
    void errorOccurred(const QString& message);
    void conversationsChanged(const QList<moeui::ConversationRow>& rows);
    void conversationCreated(qint64 conversation);
    void pathChanged(qint64 conversation, const QList<moeui::MessageRow>& messages);
    void generationStarted(qint64 conversation);
    void textStreamed(qint64 conversation, const QString& piece);
    void generationFinished(qint64 conversation);
    void busyChanged(bool busy);
    void searchResults(const QString& query, const QList<moeui::SearchRow>& rows);
    void exported(const QString& path);
    void settingsLoaded(qint64 conversation, const QString& json);
    void modelMapReady(const moeui::ModelMapData& data);
    void placementApplied(const QString& error);  // "" = applied
    void presetPlanned(const QString& strategy, const QString& placement_json,
                       const QString& error);
    void placementProfiles(const QStringList& names);
    // A profile saved or deleted ("" = done).
    void placementProfileChanged(const QString& name, const QString& error);
    // placement_json "" with error "": no such profile for this model.
    void placementProfileLoaded(const QString& name, const QString& placement_json,
                                const QString& error);

    void calibrationProgress(const QString& what);
    // The rates in words ("" with an error).
    void calibrated(const QString& summary, const QString& error);
    void placementPredicted(const moeui::SpeedFigures& figures);
    // side 0: the base model, 1: with the adapter.
    void adapterText(qint64 request, int side, const QString& piece);
    void adapterChatFinished(qint64 request, const QString& error);

  private:
    // Runs `fn` on the GUI thread (from an engine callback).
    template <class F>
    void to_gui(F&& fn);
    void start_turn(qint64 conversation);
    moe::Engine::ReplyDone reply_done(qint64 conversation);
    moe::TextCallback text_callback(qint64 conversation);
    void set_busy(bool b);

    std::unique_ptr<moe::Engine> engine_;
    moe::ChatSettings settings_;
    bool busy_ = false, model_loaded_ = false;
    qint64 adapter_requests_ = 0;
};

}  // namespace moeui

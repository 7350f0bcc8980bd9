#include "engine_host.h"

#include <QFile>
#include <QFileInfo>
#include <QMetaObject>
#include <QPointer>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moeui {

namespace {

QString stats_line(const std::string& meta_json) {
    const auto m = nlohmann::json::parse(meta_json, nullptr, false);
    if (!m.is_object() || !m.contains("generated_tokens")) return {};
    QString s = QString("%1 tokens · %2 tok/s · prompt %3 tokens at %4 tok/s · first token %5 ms")
                    .arg(m.value("generated_tokens", 0))
                    .arg(m.value("generate_tps", 0.0), 0, 'f', 1)
                    .arg(m.value("prompt_tokens", 0))
                    .arg(m.value("prompt_tps", 0.0), 0, 'f', 0)
                    .arg(m.value("ttft_ms", 0.0), 0, 'f', 0);
    if (m.value("prompt_tokens_reused", 0) > 0)
        s += QString(" (%1 from the cache)").arg(m.value("prompt_tokens_reused", 0));
    if (m.value("stop", std::string()) == "cancelled") s += " · stopped";
    return s;
}

// A placement from the editor's JSON; nullopt with `error` set when it does not parse.
std::optional<moe::Placement> parse_placement(const QString& json, QString& error) {
    try {
        return moe::Placement::from_json(nlohmann::json::parse(json.toStdString()), "placement");
    } catch (const std::exception& e) {
        error = QString::fromStdString(e.what());
        return std::nullopt;
    }
}

// "CPU experts 11.2 GB/s, dense weights 9.8 GB/s, GPU layer 0.21 ms (Xeon ..., 16 threads)".
QString rates_line(const moe::MachineRates& r) {
    QString s = QString("CPU experts %1 GB/s, dense weights %2 GB/s")
                    .arg(r.cpu_expert_bytes_per_s / 1e9, 0, 'f', 1)
                    .arg(r.cpu_dense_bytes_per_s / 1e9, 0, 'f', 1);
    if (r.has_gpu()) {
        s += QString(", GPU layer %1 ms").arg(r.gpu_layer_s * 1e3, 0, 'f', 2);
        if (r.gpu_expert_bytes_per_s > 0)
            s += QString(", GPU experts %1 GB/s").arg(r.gpu_expert_bytes_per_s / 1e9, 0, 'f', 0);
    } else {
        s += " (no GPU figures: the model runs on the CPU)";
    }
    if (!r.machine.empty()) s += " on " + QString::fromStdString(r.machine);
    return s;
}

QString summary_of(const moe::ModelInfo& i, const QString& path) {
    QString s = QString("%1 · %2 · %3 layers")
                    .arg(QFileInfo(path).fileName(), QString::fromStdString(i.architecture))
                    .arg(i.layers);
    if (i.experts > 0)
        s += QString(" · %1 experts, top-%2 · experts on the CPU as %3")
                 .arg(i.experts)
                 .arg(i.experts_per_token)
                 .arg(QString::fromStdString(i.expert_format));
    return s;
}

}  // namespace

EngineHost::EngineHost(const QString& store_path, QObject* parent)
    : QObject(parent), engine_(std::make_unique<moe::Engine>(store_path.toStdString())) {}

EngineHost::~EngineHost() {
    engine_.reset();  // joins the engine thread before the signals' receivers go
}

template <class F>
void EngineHost::to_gui(F&& fn) {
    QPointer<EngineHost> self(this);
    QMetaObject::invokeMethod(
        this,
        [self, fn = std::forward<F>(fn)]() mutable {
            if (self) fn();
        },
        Qt::QueuedConnection);
}

void EngineHost::set_busy(bool b) {
    if (busy_ == b) return;
    busy_ = b;
    emit busyChanged(b);
}

void EngineHost::loadModel(const QString& path, double gpu_budget_gib, const QString& cpu_experts) {
    set_busy(true);
    emit modelLoading(path);
    moe::Engine::Placing placing;
    placing.gpu_budget_gib = gpu_budget_gib;
    placing.cpu_experts = cpu_experts.toStdString();
    moe::LoadOptions options;
    options.progress = [this](double done, const std::string& stage) {
        const int permille = int(done * 1000.0);
        const QString what = QString::fromStdString(stage);
        to_gui([this, permille, what] { emit loadProgress(permille, what); });
    };
    engine_->load(path.toStdString(), options, placing,
                  [this, path](const auto& info, const std::string& e) {
                      const QString summary = info ? summary_of(info->info, path) + " · " +
                                                         QString::fromStdString(info->placement)
                                                   : QString();
                      const QString err = QString::fromStdString(e);
                      to_gui([this, summary, err] {
                          set_busy(false);
                          model_loaded_ = err.isEmpty();
                          if (err.isEmpty()) {
                              emit modelLoaded(summary);
                          } else {
                              emit errorOccurred(err);
                          }
                      });
                  });
}

void EngineHost::refreshConversations() {
    engine_->with_store([this](moe::ConversationStore& st) {
        QList<ConversationRow> rows;
        for (const auto& c : st.list()) rows.push_back({c.id, QString::fromStdString(c.title)});
        to_gui([this, rows] { emit conversationsChanged(rows); });
    });
}

void EngineHost::newConversation() {
    engine_->with_store([this](moe::ConversationStore& st) {
        const int64_t id = st.create_conversation("New chat");
        to_gui([this, id] { emit conversationCreated(id); });
    });
    refreshConversations();
}

void EngineHost::openConversation(qint64 conversation) {
    engine_->with_store(
        [this, conversation](moe::ConversationStore& st) {
            QList<MessageRow> rows;
            for (const auto& m : st.active_path(conversation)) {
                const auto sib = st.siblings(m.id);
                const auto at = std::find(sib.begin(), sib.end(), m.id) - sib.begin();
                rows.push_back({m.id, QString::fromStdString(m.role),
                                QString::fromStdString(m.content),
                                m.role == "assistant" ? stats_line(m.meta) : QString(), int(at),
                                int(sib.size())});
            }
            to_gui([this, conversation, rows] { emit pathChanged(conversation, rows); });
        },
        [this](const std::string& e) {
            to_gui([this, e] { emit errorOccurred(QString::fromStdString(e)); });
        });
}

void EngineHost::start_turn(qint64 conversation) {
    set_busy(true);
    emit generationStarted(conversation);
}

moe::TextCallback EngineHost::text_callback(qint64 conversation) {
    return [this, conversation](const std::string& piece) {
        const QString p = QString::fromStdString(piece);
        to_gui([this, conversation, p] { emit textStreamed(conversation, p); });
    };
}

moe::Engine::ReplyDone EngineHost::reply_done(qint64 conversation) {
    return [this, conversation](const auto& reply, const std::string& e) {
        const QString err = QString::fromStdString(e);
        to_gui([this, conversation, err] {
            set_busy(false);
            if (!err.isEmpty()) emit errorOccurred(err);
            emit generationFinished(conversation);
        });
        (void)reply;
        openConversation(conversation);
        refreshConversations();
    };
}

void EngineHost::send(qint64 conversation, const QString& text) {
    start_turn(conversation);
    // The first message names the conversation.
    const std::string title = text.left(48).simplified().toStdString();
    engine_->with_store([conversation, title](moe::ConversationStore& st) {
        const auto c = st.conversation(conversation);
        if (c && !c->active_leaf && c->title == "New chat") st.rename(conversation, title);
    });
    engine_->send(conversation, text.toStdString(), settings_, text_callback(conversation),
                  reply_done(conversation));
    openConversation(conversation);  // shows the question while the answer is computed
}

void EngineHost::regenerate(qint64 assistant_message) {
    engine_->with_store([this, assistant_message](moe::ConversationStore& st) {
        const auto m = st.message(assistant_message);
        if (!m) return;
        const qint64 conv = m->conversation_id;
        to_gui([this, conv, assistant_message] {
            start_turn(conv);
            engine_->regenerate(assistant_message, settings_, text_callback(conv),
                                reply_done(conv));
        });
    });
}

void EngineHost::edit(qint64 user_message, const QString& text) {
    engine_->with_store([this, user_message, text](moe::ConversationStore& st) {
        const auto m = st.message(user_message);
        if (!m) return;
        const qint64 conv = m->conversation_id;
        to_gui([this, conv, user_message, text] {
            start_turn(conv);
            engine_->edit(user_message, text.toStdString(), settings_, text_callback(conv),
                          reply_done(conv));
        });
    });
}

void EngineHost::stop() {
    engine_->cancel();
}

void EngineHost::switchBranch(qint64 message, int delta) {
    engine_->with_store([this, message, delta](moe::ConversationStore& st) {
        const auto m = st.message(message);
        if (!m) return;
        const auto sib = st.siblings(message);
        const auto at = std::find(sib.begin(), sib.end(), message) - sib.begin() + delta;
        if (at < 0 || at >= std::ptrdiff_t(sib.size())) return;
        st.set_active_leaf(m->conversation_id, st.newest_leaf(sib[size_t(at)]));
        const qint64 conv = m->conversation_id;
        to_gui([this, conv] { openConversation(conv); });
    });
}

void EngineHost::renameConversation(qint64 conversation, const QString& title) {
    engine_->with_store([conversation, t = title.toStdString()](moe::ConversationStore& st) {
        st.rename(conversation, t);
    });
    refreshConversations();
}

void EngineHost::deleteConversation(qint64 conversation) {
    engine_->with_store(
        [conversation](moe::ConversationStore& st) { st.delete_conversation(conversation); });
    refreshConversations();
}

void EngineHost::undoDelete(qint64 conversation) {
    engine_->with_store(
        [conversation](moe::ConversationStore& st) { st.undo_delete(conversation); });
    refreshConversations();
}

void EngineHost::search(const QString& query) {
    engine_->with_store(
        [this, query](moe::ConversationStore& st) {
            QList<SearchRow> rows;
            for (const auto& h : st.search(query.toStdString()))
                rows.push_back({h.conversation_id, h.message_id, QString::fromStdString(h.title),
                                QString::fromStdString(h.snippet)});
            to_gui([this, query, rows] { emit searchResults(query, rows); });
        },
        [this](const std::string& e) {
            to_gui([this, e] { emit errorOccurred(QString::fromStdString(e)); });
        });
}

void EngineHost::exportConversation(qint64 conversation, const QString& path, bool json) {
    engine_->with_store(
        [this, conversation, path, json](moe::ConversationStore& st) {
            const std::string text = json ? st.export_json(conversation).dump(2) + "\n"
                                          : st.export_markdown(conversation);
            QFile f(path);
            if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
                f.write(text.data(), qint64(text.size())) != qint64(text.size()))
                throw moe::Error(path.toStdString() + ": cannot write (" +
                                 f.errorString().toStdString() + ")");
            to_gui([this, path] { emit exported(path); });
        },
        [this](const std::string& e) {
            to_gui([this, e] { emit errorOccurred(QString::fromStdString(e)); });
        });
}

void EngineHost::importConversation(const QString& path) {
    engine_->with_store(
        [this, path](moe::ConversationStore& st) {
            QFile f(path);
            if (!f.open(QIODevice::ReadOnly))
                throw moe::Error(path.toStdString() + ": cannot read");
            const auto j = nlohmann::json::parse(f.readAll().toStdString(), nullptr, false);
            if (j.is_discarded()) throw moe::Error(path.toStdString() + ": not valid JSON");
            const int64_t id = st.import_json(j);
            to_gui([this, id] { emit conversationCreated(id); });
        },
        [this](const std::string& e) {
            to_gui([this, e] { emit errorOccurred(QString::fromStdString(e)); });
        });
    refreshConversations();
}

void EngineHost::loadSettings(qint64 conversation) {
    engine_->with_store([this, conversation](moe::ConversationStore& st) {
        const auto c = st.conversation(conversation);
        const QString json = c ? QString::fromStdString(c->settings) : QString("{}");
        to_gui([this, conversation, json] { emit settingsLoaded(conversation, json); });
    });
}

void EngineHost::saveSettings(qint64 conversation, const QString& json) {
    engine_->with_store([conversation, j = json.toStdString()](moe::ConversationStore& st) {
        st.set_settings(conversation, j);
    });
}

void EngineHost::requestModelMap() {
    engine_->model_map([this](const std::optional<moe::Engine::ModelMap>& m) {
        ModelMapData d;
        if (m) {
            d.title = QString("%1 · %2 layers")
                          .arg(QString::fromStdString(m->info.architecture))
                          .arg(m->info.layers);
            if (m->info.experts)
                d.title += QString(" · %1 experts, top-%2")
                               .arg(m->info.experts)
                               .arg(m->info.experts_per_token);
            d.title += " · " + QString::fromStdString(m->placement.summary());
            d.placement_json = QString::fromStdString(m->placement.to_json().dump());
            d.gpu_budget = m->gpu_budget;
            moe::Placement fixed = m->placement;  // the non-expert part of the GPU weights
            for (auto& l : fixed.layers)
                for (auto& x : l.experts) x = moe::Device::Cpu;
            d.fixed_gpu_bytes = moe::gpu_weight_bytes(m->footprint, fixed);
            d.total_bytes = m->footprint.embedding_bytes + m->footprint.head_bytes;
            for (const auto& l : m->footprint.layers) {
                d.total_bytes += l.attention + l.dense;
                for (const uint64_t b : l.experts) d.total_bytes += b;
            }
            for (size_t i = 0; i < m->placement.layers.size(); ++i) {
                const moe::LayerPlacement& lp = m->placement.layers[i];
                LayerMapRow row;
                row.attention_gpu = lp.attention == moe::Device::Gpu;
                row.dense_gpu = lp.dense == moe::Device::Gpu;
                const auto& counts =
                    i < m->usage.counts.size() ? m->usage.counts[i] : std::vector<uint64_t>{};
                for (size_t e = 0; e < lp.experts.size(); ++e) {
                    row.expert_gpu.push_back(lp.experts[e] == moe::Device::Gpu);
                    row.expert_count.push_back(e < counts.size() ? counts[e] : 0);
                    const auto& bytes = m->footprint.layers[i].experts;
                    row.expert_bytes.push_back(e < bytes.size() ? bytes[e] : 0);
                    d.routed += e < counts.size() ? counts[e] : 0;
                }
                d.layers.push_back(row);
            }
        } else {
            d.title = tr("No model is loaded");
        }
        to_gui([this, d] { emit modelMapReady(d); });
    });
}

void EngineHost::applyPlacement(const QString& placement_json) {
    QString error;
    std::optional<moe::Placement> p = parse_placement(placement_json, error);
    if (!p) {
        emit placementApplied(error);
        return;
    }
    engine_->apply_placement(std::move(*p), [this](const std::string& error) {
        const QString e = QString::fromStdString(error);
        to_gui([this, e] { emit placementApplied(e); });
    });
}

void EngineHost::planPreset(const QString& strategy, quint64 weight_budget,
                            const QString& placement_json) {
    QString error;
    std::optional<moe::Placement> p = parse_placement(placement_json, error);
    if (!p) {
        emit presetPlanned(strategy, {}, error);
        return;
    }
    engine_->plan_experts(
        std::move(*p), strategy.toStdString(), weight_budget,
        [this, strategy](const std::optional<moe::Placement>& planned, const std::string& e) {
            const QString json =
                planned ? QString::fromStdString(planned->to_json().dump()) : QString();
            const QString err = QString::fromStdString(e);
            to_gui([this, strategy, json, err] { emit presetPlanned(strategy, json, err); });
        });
}

void EngineHost::listPlacementProfiles() {
    engine_->placement_profiles([this](const std::vector<std::string>& names, const std::string&) {
        // No model loaded: an empty list is the honest answer for the editor's combo.
        QStringList list;
        for (const auto& n : names) list << QString::fromStdString(n);
        to_gui([this, list] { emit placementProfiles(list); });
    });
}

void EngineHost::savePlacementProfile(const QString& name, const QString& placement_json) {
    QString error;
    std::optional<moe::Placement> p = parse_placement(placement_json, error);
    if (!p) {
        emit placementProfileChanged(name, error);
        return;
    }
    engine_->save_placement_profile(
        name.toStdString(), std::move(*p), [this, name](const std::string& e) {
            const QString err = QString::fromStdString(e);
            to_gui([this, name, err] { emit placementProfileChanged(name, err); });
        });
    listPlacementProfiles();  // queued after the save
}

void EngineHost::loadPlacementProfile(const QString& name) {
    engine_->load_placement_profile(
        name.toStdString(),
        [this, name](const std::optional<moe::Placement>& p, const std::string& e) {
            const QString json = p ? QString::fromStdString(p->to_json().dump()) : QString();
            const QString err = QString::fromStdString(e);
            to_gui([this, name, json, err] { emit placementProfileLoaded(name, json, err); });
        });
}

void EngineHost::deletePlacementProfile(const QString& name) {
    engine_->delete_placement_profile(name.toStdString(), [this, name](const std::string& e) {
        const QString err = QString::fromStdString(e);
        to_gui([this, name, err] { emit placementProfileChanged(name, err); });
    });
    listPlacementProfiles();
}

void EngineHost::calibrate() {
    engine_->calibrate(
        [this](const std::string& what) {
            const QString w = QString::fromStdString(what);
            to_gui([this, w] { emit calibrationProgress(w); });
        },
        [this](const std::optional<moe::MachineRates>& r, const std::string& e) {
            const QString summary = r ? rates_line(*r) : QString();
            const QString err = QString::fromStdString(e);
            to_gui([this, summary, err] { emit calibrated(summary, err); });
        });
}

void EngineHost::predictPlacement(const QString& placement_json) {
    QString error;
    std::optional<moe::Placement> p = parse_placement(placement_json, error);
    if (!p) {
        SpeedFigures f;
        f.error = error;
        emit placementPredicted(f);
        return;
    }
    engine_->predict_placement(
        std::move(*p),
        [this](const std::optional<moe::Engine::Prediction>& r, const std::string& e) {
            SpeedFigures f;
            f.error = QString::fromStdString(e);
            if (r) {
                f.measured_decode_tok_s = r->measured.generate_tokens_per_second();
                f.measured_prompt_tok_s = r->measured.prompt_tokens_per_second();
                f.measured_prompt_tokens = int(r->measured.prompt_tokens);
            }
            if (r && e.empty()) {
                const moe::SpeedPrediction& s = r->speed;
                f.decode_tok_s = s.decode_tok_s;
                f.prefill_tok_s = s.prefill_tok_s;
                f.prompt_tokens = int(moe::CostOptions{}.prompt_tokens);
                f.vram_bytes = s.vram_bytes;
                f.ram_bytes = s.ram_bytes;
                f.gpu_share = s.gpu_hit_rate;
                for (const auto& n : s.notes) f.notes << QString::fromStdString(n);
                f.rates_machine = QString::fromStdString(r->rates_machine);
            }
            to_gui([this, f] { emit placementPredicted(f); });
        });
}

qint64 EngineHost::chatWithAdapter(const QString& model, const QString& adapter,
                                   const QString& prompt, int max_new_tokens, bool greedy) {
    const qint64 id = ++adapter_requests_;
    moe::ChatSettings s = settings_;
    s.max_new_tokens = max_new_tokens;
    s.sampling.greedy = greedy;
    engine_->adapter_chat(
        model.toStdString(), adapter.toStdString(), prompt.toStdString(), s,
        [this, id](int side, const std::string& piece) {
            const QString p = QString::fromStdString(piece);
            to_gui([this, id, side, p] { emit adapterText(id, side, p); });
        },
        [this, id](const std::optional<moe::Engine::AdapterAnswers>&, const std::string& e) {
            const QString err = QString::fromStdString(e);
            to_gui([this, id, err] { emit adapterChatFinished(id, err); });
        });
    return id;
}

void EngineHost::closeAdapterChat() {
    engine_->close_adapter_chat();
}

}  // namespace moeui

// LibDeviceMapper (libdevmapper's dm_task ioctls) and the table-text matching of mirrors
// to their log uuid.
#include "dmtable/dm_device.h"

#include <libdevmapper.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "dmtable/table_text.h"

namespace clogd::dmtable {

namespace {

// libdevmapper reports errors through a global log function; this one keeps the last
// error and warning lines of the current thread (for the TableError) instead of printing.
thread_local std::string tls_dm_messages;

void CaptureDmLog(int level, const char* /*file*/, int /*line*/, int /*dm_errno_or_class*/,
                  const char* format, ...) {
  constexpr int kWarnLevel = 4;  // libdevmapper's _LOG_WARN; lower is more severe
  if ((level & 0x0f) > kWarnLevel) return;
  char line[512];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(line, sizeof(line), format, ap);
  va_end(ap);
  if (!tls_dm_messages.empty()) tls_dm_messages += "; ";
  tls_dm_messages += line;
}

TableError DmError(const std::string& op, const std::string& name) {
  std::string message = "device-mapper: " + op + " " + name + " failed";
  if (!tls_dm_messages.empty()) message += ": " + tls_dm_messages;
  return TableError{message};
}

// Owns one dm_task.
class Task {
 public:
  explicit Task(int type) : dmt_(dm_task_create(type)) { tls_dm_messages.clear(); }
  ~Task() {
    if (dmt_ != nullptr) dm_task_destroy(dmt_);
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  dm_task* get() const { return dmt_; }
  bool ok() const { return dmt_ != nullptr; }

 private:
  dm_task* dmt_;
};

// Creates a task for device `name`; nullopt (and the error in `err`) on failure.
bool Prepare(Task& task, const std::string& name, const std::string& op, TableError& err) {
  if (!task.ok() || (!name.empty() && dm_task_set_name(task.get(), name.c_str()) == 0)) {
    err = DmError(op, name);
    return false;
  }
  return true;
}

Expected<std::vector<DmTarget>> Targets(int type, const std::string& name, const char* op) {
  Task task(type);
  TableError err;
  if (!Prepare(task, name, op, err)) return err;
  if (dm_task_run(task.get()) == 0) return DmError(op, name);
  std::vector<DmTarget> out;
  void* next = nullptr;
  do {
    uint64_t start = 0, length = 0;
    char* target_type = nullptr;
    char* params = nullptr;
    next = dm_get_next_target(task.get(), next, &start, &length, &target_type, &params);
    if (target_type == nullptr) break;  // a device without a table
    out.push_back(DmTarget{start, length, target_type, params ? params : ""});
  } while (next != nullptr);
  return out;
}

Expected<Done> RunSimple(int type, const std::string& name, const char* op, bool noflush) {
  Task task(type);
  TableError err;
  if (!Prepare(task, name, op, err)) return err;
  if (noflush) {
    // noflush keeps held I/O held; nolockfs: no filesystem freeze, whose writes could
    // wait on exactly the I/O being held.
    if (dm_task_no_flush(task.get()) == 0 || dm_task_skip_lockfs(task.get()) == 0) {
      return DmError(op, name);
    }
  }
  uint32_t cookie = 0;
  const bool udev_sync = type == DM_DEVICE_RESUME;
  if (udev_sync && dm_task_set_cookie(task.get(), &cookie, 0) == 0) return DmError(op, name);
  const bool ran = dm_task_run(task.get()) != 0;
  // Wait for udev's rules on the new node state (a no-op without udev / DM_DISABLE_UDEV).
  if (udev_sync) (void)dm_udev_wait(cookie);
  if (!ran) return DmError(op, name);
  return Done{};
}

class LibDeviceMapper : public DeviceMapper {
 public:
  LibDeviceMapper() {
    static std::once_flag once;
    std::call_once(once, [] { dm_log_with_errno_init(CaptureDmLog); });
  }

  Expected<std::vector<std::string>> ListDevices() override {
    Task task(DM_DEVICE_LIST);
    TableError err;
    if (!Prepare(task, "", "list", err)) return err;
    if (dm_task_run(task.get()) == 0) return DmError("list", "devices");
    std::vector<std::string> out;
    dm_names* names = dm_task_get_names(task.get());
    if (names == nullptr || names->dev == 0) return out;
    for (;;) {
      out.emplace_back(names->name);
      if (names->next == 0) break;
      names = reinterpret_cast<dm_names*>(reinterpret_cast<char*>(names) + names->next);
    }
    return out;
  }

  Expected<DmInfo> Info(const std::string& name) override {
    Task task(DM_DEVICE_INFO);
    TableError err;
    if (!Prepare(task, name, "info", err)) return err;
    dm_info info{};
    if (dm_task_run(task.get()) == 0 || dm_task_get_info(task.get(), &info) == 0) {
      return DmError("info", name);
    }
    if (info.exists == 0) return TableError{"device-mapper: no device " + name};
    DmInfo out;
    out.name = name;
    if (const char* uuid = dm_task_get_uuid(task.get())) out.uuid = uuid;
    out.major = info.major;
    out.minor = info.minor;
    out.suspended = info.suspended != 0;
    out.live_table = info.live_table != 0;
    out.inactive_table = info.inactive_table != 0;
    out.open_count = info.open_count;
    return out;
  }

  Expected<std::vector<DmTarget>> Table(const std::string& name) override {
    return Targets(DM_DEVICE_TABLE, name, "table");
  }

  Expected<std::vector<DmTarget>> Status(const std::string& name) override {
    return Targets(DM_DEVICE_STATUS, name, "status");
  }

  Expected<Done> Suspend(const std::string& name, bool noflush) override {
    return RunSimple(DM_DEVICE_SUSPEND, name, noflush ? "noflush suspend" : "suspend", noflush);
  }

  Expected<Done> Load(const std::string& name, const std::vector<DmTarget>& table) override {
    Task task(DM_DEVICE_RELOAD);
    TableError err;
    if (!Prepare(task, name, "load", err)) return err;
    for (const DmTarget& t : table) {
      if (dm_task_add_target(task.get(), t.start, t.length, t.type.c_str(), t.params.c_str()) ==
          0) {
        return DmError("load", name);
      }
    }
    if (dm_task_run(task.get()) == 0) return DmError("load", name);
    return Done{};
  }

  Expected<Done> Resume(const std::string& name) override {
    return RunSimple(DM_DEVICE_RESUME, name, "resume", false);
  }

  Expected<Done> Clear(const std::string& name) override {
    return RunSimple(DM_DEVICE_CLEAR, name, "clear", false);
  }
};

}  // namespace

std::unique_ptr<DeviceMapper> MakeLibDeviceMapper() { return std::make_unique<LibDeviceMapper>(); }

std::optional<std::string_view> MirrorLogUuid(const DmTarget& target) {
  if (target.type != "mirror") return std::nullopt;
  const std::vector<std::string_view> words = text::Split(target.params);
  if (words.size() >= 3 && words[0] == "userspace") return words[2];
  if (words.size() >= 4 && words[0] == "cluster") return words[3];
  return std::nullopt;
}

bool MirrorUsesLog(const DmTarget& target, std::string_view log_uuid) {
  return !log_uuid.empty() && MirrorLogUuid(target) == log_uuid;
}

Expected<std::string> MirrorHealth(std::string_view status_params) {
  const std::vector<std::string_view> w = text::Split(status_params);
  uint64_t legs = 0;
  if (w.empty() || text::ParseUnsigned(w[0], 100, &legs) != text::Num::kOk || legs == 0 ||
      w.size() < legs + 4 || w[legs + 2] != "1" ||
      w[legs + 1].find('/') == std::string_view::npos || w[legs + 3].size() != legs) {
    return TableError{"mirror status '" + std::string(status_params) +
                      "' does not read as '<#legs> <dev>... <in>/<total> 1 <health letters>'"};
  }
  return std::string(w[legs + 3]);
}

std::vector<std::string> DevicesUsingLog(const std::vector<NamedTable>& tables,
                                         std::string_view log_uuid) {
  std::vector<std::string> out;
  for (const NamedTable& t : tables) {
    for (const DmTarget& target : t.targets) {
      if (MirrorUsesLog(target, log_uuid)) {
        out.push_back(t.name);
        break;
      }
    }
  }
  return out;
}

}  // namespace clogd::dmtable

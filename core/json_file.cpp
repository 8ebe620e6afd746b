#include "core/json_file.hpp"

#include <fstream>
#include <system_error>

#include "core/error.hpp"

namespace tessera {

void write_json_file(const std::filesystem::path& path, const nlohmann::json& value) {
  auto temporary = path;
  temporary += ".tmp";
  const std::string fix =
      "; check that " + path.parent_path().string() + " is writable and has space";
  {
    std::ofstream out(temporary);
    out << value.dump(2) << '\n';
    if (!out) throw UsageError("cannot write " + temporary.string() + fix);
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    throw UsageError("cannot rename " + temporary.string() + " to " + path.string() + " (" +
                     error.message() + ")" + fix);
  }
}

std::optional<nlohmann::json> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  nlohmann::json value = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

}  // namespace tessera

// A small strict JSON parser (RFC 8259) for config.json and safetensors headers. Depth and size
// are bounded; every error says where in the text it is.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ff {

class JsonValue {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  // Object members in file order.
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  // nullptr when absent or when this is not an object.
  const JsonValue* find(std::string_view key) const;

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Throws std::invalid_argument("... at byte N") on malformed input, duplicate keys, nesting deeper
// than max_depth, or trailing garbage.
JsonValue parse_json(std::string_view text, int max_depth = 32);

}  // namespace ff

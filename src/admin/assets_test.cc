#include "admin/assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace gh::admin {
namespace {

TEST(Assets, RootIsTheDashboardPage) {
  const Asset* page = find_asset("/");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->path, "/");
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(page->body.starts_with("<!doctype html>"));
  EXPECT_NE(page->body.find("<script src=\"/dashboard.js\""), std::string_view::npos);
  EXPECT_NE(page->body.find("href=\"/dashboard.css\""), std::string_view::npos);
  EXPECT_TRUE(page->body.ends_with("</html>\n"));
}

TEST(Assets, ScriptAndStyleSheet) {
  const Asset* js = find_asset("/dashboard.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("'/events'"), std::string_view::npos);
  const Asset* css = find_asset("/dashboard.css");
  ASSERT_NE(css, nullptr);
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_FALSE(css->body.empty());
}

TEST(Assets, UnknownPathsAreNotServed) {
  EXPECT_EQ(find_asset("/index.html"), nullptr);  // the page is "/" only
  EXPECT_EQ(find_asset("/nope.js"), nullptr);
  EXPECT_EQ(find_asset(""), nullptr);
  EXPECT_EQ(find_asset("dashboard.js"), nullptr);
  EXPECT_EQ(find_asset("/dashboard.js/"), nullptr);
  EXPECT_EQ(find_asset("/DASHBOARD.JS"), nullptr);
  EXPECT_EQ(assets().size(), 3u);
}

// Bytes outside ASCII (the page's "–" and "·") survive the embedding as they are in the file.
TEST(Assets, BodiesAreTheFilesBytes) {
  const Asset* page = find_asset("/");
  ASSERT_NE(page, nullptr);
  EXPECT_NE(page->body.find("\xe2\x80\x93"), std::string_view::npos);  // U+2013 in UTF-8
  EXPECT_EQ(page->body.find('\0'), std::string_view::npos);
}

// The admin listener sends Content-Security-Policy: default-src 'self': an inline script, an
// inline event handler or an inline style would be refused by the browser.
TEST(Assets, PageHasNothingInline) {
  const std::string page(find_asset("/")->body);
  EXPECT_FALSE(std::regex_search(page, std::regex("<script(?![^>]*\\bsrc=)[^>]*>", std::regex::icase)))
      << "an inline <script>";
  EXPECT_FALSE(std::regex_search(page, std::regex("<style", std::regex::icase))) << "a <style> element";
  EXPECT_FALSE(std::regex_search(page, std::regex("\\sstyle\\s*=", std::regex::icase))) << "a style attribute";
  EXPECT_FALSE(std::regex_search(page, std::regex("\\son[a-z]+\\s*=", std::regex::icase))) << "an event handler attribute";
  EXPECT_FALSE(std::regex_search(page, std::regex("(src|href)=\"(https?:)?//", std::regex::icase)))
      << "a file loaded from elsewhere";
}

// The token lives in the tab's sessionStorage only, and text from the gateway (route and service
// names) is never parsed as HTML.
TEST(Assets, ScriptKeepsTheTokenInTheTabAndWritesNoHtml) {
  const std::string js(find_asset("/dashboard.js")->body);
  EXPECT_NE(js.find("sessionStorage.setItem("), std::string::npos);
  EXPECT_EQ(js.find("localStorage."), std::string::npos);
  EXPECT_EQ(js.find("document.cookie"), std::string::npos);
  EXPECT_EQ(js.find("innerHTML"), std::string::npos);
  EXPECT_EQ(js.find("outerHTML"), std::string::npos);
  EXPECT_EQ(js.find("insertAdjacentHTML"), std::string::npos);
  EXPECT_EQ(js.find("eval("), std::string::npos);
}

}  // namespace
}  // namespace gh::admin

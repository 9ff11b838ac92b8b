"""The differential corpus: real-world package.json files chosen for hard placement cases.

`record.py` materializes each entry into projects/<name>/ (package.json, optional .npmrc and
workspace members) and records what npm writes for it. Edit this list, then re-record.
"""

P = {}


def add(name, deps=None, dev=None, **extra):
    pj = {"name": name, "version": "1.0.0", "private": True}
    if deps:
        pj["dependencies"] = deps
    if dev:
        pj["devDependencies"] = dev
    npmrc = extra.pop("npmrc", None)
    files = extra.pop("files", {})
    pj.update(extra)
    P[name] = {"package.json": pj, "npmrc": npmrc, "files": files}


add("jest-babel-webpack",
    {"lodash": "^4.17.21", "moment": "^2.30.1", "chalk": "^4.1.2", "commander": "^12.0.0"},
    {"jest": "^29.7.0", "@babel/core": "^7.24.0", "@babel/preset-env": "^7.24.0",
     "babel-jest": "^29.7.0", "eslint": "^8.57.0", "prettier": "^3.2.5", "webpack": "^5.90.0",
     "webpack-cli": "^5.1.4", "babel-loader": "^9.1.3", "css-loader": "^6.10.0",
     "style-loader": "^3.3.4"})
add("react-vite",
    {"react": "^18.3.1", "react-dom": "^18.3.1"},
    {"vite": "^5.2.0", "@vitejs/plugin-react": "^4.2.1", "typescript": "^5.4.0",
     "@types/react": "^18.3.0", "@types/react-dom": "^18.3.0", "eslint": "^8.57.0",
     "eslint-plugin-react-hooks": "^4.6.0", "eslint-plugin-react-refresh": "^0.4.6",
     "@typescript-eslint/eslint-plugin": "^7.2.0", "@typescript-eslint/parser": "^7.2.0"})
add("next-tailwind",
    {"next": "^14.2.0", "react": "^18", "react-dom": "^18"},
    {"typescript": "^5", "@types/node": "^20", "@types/react": "^18", "@types/react-dom": "^18",
     "eslint": "^8", "eslint-config-next": "^14.2.0", "tailwindcss": "^3.4.1", "postcss": "^8",
     "autoprefixer": "^10.4.19"})
add("storybook-react",
    {"react": "^18.2.0", "react-dom": "^18.2.0"},
    {"storybook": "^8.0.0", "@storybook/react": "^8.0.0", "@storybook/react-vite": "^8.0.0",
     "@storybook/addon-essentials": "^8.0.0", "@storybook/addon-interactions": "^8.0.0",
     "@storybook/test": "^8.0.0", "vite": "^5.2.0", "@vitejs/plugin-react": "^4.2.1"})
add("eslint-airbnb-ts",
    None,
    {"eslint": "^8.56.0", "@typescript-eslint/parser": "^6.21.0",
     "@typescript-eslint/eslint-plugin": "^6.21.0", "eslint-plugin-import": "^2.29.1",
     "eslint-plugin-react": "^7.34.0", "eslint-plugin-jsx-a11y": "^6.8.0",
     "eslint-plugin-react-hooks": "^4.6.0", "eslint-config-airbnb": "^19.0.4",
     "eslint-config-airbnb-typescript": "^17.1.0", "typescript": "^5.3.3"})
add("eslint9-flat",
    None,
    {"eslint": "^9.0.0", "typescript-eslint": "^8.0.0", "@eslint/js": "^9.0.0",
     "globals": "^15.0.0", "typescript": "^5.5.0", "eslint-config-prettier": "^9.1.0",
     "eslint-plugin-prettier": "^5.1.3", "prettier": "^3.3.0"})
add("eslint-plugins-peer-only",
    None,
    {"eslint-plugin-react": "^7.33.0", "eslint-plugin-import": "^2.29.0",
     "eslint-plugin-jsx-a11y": "^6.8.0", "@typescript-eslint/eslint-plugin": "^6.0.0",
     "eslint-config-prettier": "^9.0.0", "eslint-plugin-jest": "^27.0.0"})
add("angular17",
    {"@angular/animations": "^17.3.0", "@angular/common": "^17.3.0",
     "@angular/compiler": "^17.3.0", "@angular/core": "^17.3.0", "@angular/forms": "^17.3.0",
     "@angular/platform-browser": "^17.3.0", "@angular/platform-browser-dynamic": "^17.3.0",
     "@angular/router": "^17.3.0", "rxjs": "~7.8.0", "tslib": "^2.3.0", "zone.js": "~0.14.3"},
    {"@angular-devkit/build-angular": "^17.3.0", "@angular/cli": "^17.3.0",
     "@angular/compiler-cli": "^17.3.0", "@types/jasmine": "~5.1.0", "jasmine-core": "~5.1.0",
     "karma": "~6.4.0", "karma-chrome-launcher": "~3.2.0", "karma-coverage": "~2.2.0",
     "karma-jasmine": "~5.1.0", "karma-jasmine-html-reporter": "~2.1.0", "typescript": "~5.4.2"})
add("nestjs",
    {"@nestjs/common": "^10.0.0", "@nestjs/core": "^10.0.0", "@nestjs/platform-express": "^10.0.0",
     "@nestjs/config": "^3.2.0", "@nestjs/typeorm": "^10.0.2", "typeorm": "^0.3.20", "pg": "^8.11.0",
     "reflect-metadata": "^0.2.0", "rxjs": "^7.8.1"},
    {"@nestjs/cli": "^10.0.0", "@nestjs/schematics": "^10.0.0", "@nestjs/testing": "^10.0.0",
     "@types/express": "^4.17.17", "@types/jest": "^29.5.2", "@types/node": "^20.3.1",
     "@types/supertest": "^6.0.0", "jest": "^29.5.0", "supertest": "^6.3.3", "ts-jest": "^29.1.0",
     "ts-loader": "^9.4.3", "ts-node": "^10.9.1", "tsconfig-paths": "^4.2.0", "typescript": "^5.1.3"})
add("vue-vite",
    {"vue": "^3.4.21", "vue-router": "^4.3.0", "pinia": "^2.1.7"},
    {"vite": "^5.2.8", "@vitejs/plugin-vue": "^5.0.4", "vitest": "^1.4.0", "@vue/test-utils": "^2.4.5",
     "jsdom": "^24.0.0", "typescript": "~5.4.0", "vue-tsc": "^2.0.11", "eslint": "^8.57.0",
     "eslint-plugin-vue": "^9.23.0", "@vue/eslint-config-typescript": "^13.0.0"})
add("nuxt3", {"nuxt": "^3.11.0", "vue": "^3.4.21", "vue-router": "^4.3.0"})
add("sveltekit",
    None,
    {"@sveltejs/adapter-auto": "^3.0.0", "@sveltejs/kit": "^2.0.0",
     "@sveltejs/vite-plugin-svelte": "^3.0.0", "svelte": "^4.2.7", "svelte-check": "^3.6.0",
     "typescript": "^5.0.0", "vite": "^5.0.3", "eslint-plugin-svelte": "^2.35.1",
     "prettier-plugin-svelte": "^3.1.2", "prettier": "^3.1.1"})
add("vitest-rtl",
    {"react": "^18.3.1", "react-dom": "^18.3.1"},
    {"vite": "^5.4.0", "vitest": "^2.0.0", "@vitest/coverage-v8": "^2.0.0", "jsdom": "^25.0.0",
     "@testing-library/react": "^16.0.0", "@testing-library/jest-dom": "^6.4.0",
     "@testing-library/user-event": "^14.5.0", "@testing-library/dom": "^10.4.0"})
add("gatsby5",
    {"gatsby": "^5.13.0", "react": "^18.2.0", "react-dom": "^18.2.0",
     "gatsby-plugin-image": "^3.13.0", "gatsby-plugin-sharp": "^5.13.0",
     "gatsby-transformer-sharp": "^5.13.0", "gatsby-source-filesystem": "^5.13.0",
     "gatsby-plugin-manifest": "^5.13.0"})
add("create-react-app",
    {"react": "^18.2.0", "react-dom": "^18.2.0", "react-scripts": "5.0.1", "web-vitals": "^2.1.4",
     "@testing-library/jest-dom": "^5.17.0", "@testing-library/react": "^13.4.0",
     "@testing-library/user-event": "^13.5.0"})
add("expo51",
    {"expo": "~51.0.0", "expo-status-bar": "~1.12.1", "react": "18.2.0", "react-native": "0.74.5",
     "expo-router": "~3.5.0", "react-native-safe-area-context": "4.10.5",
     "react-native-screens": "3.31.1", "expo-linking": "~6.3.1", "expo-constants": "~16.0.2"},
    {"@babel/core": "^7.20.0", "@types/react": "~18.2.45", "typescript": "~5.3.3"})
add("react-native-template",
    {"react": "18.3.1", "react-native": "0.76.5"},
    {"@babel/core": "^7.25.2", "@babel/preset-env": "^7.25.3", "@babel/runtime": "^7.25.0",
     "@react-native-community/cli": "15.0.1", "@react-native-community/cli-platform-android": "15.0.1",
     "@react-native-community/cli-platform-ios": "15.0.1", "@react-native/babel-preset": "0.76.5",
     "@react-native/eslint-config": "0.76.5", "@react-native/metro-config": "0.76.5",
     "@react-native/typescript-config": "0.76.5", "@types/react": "^18.2.6",
     "@types/react-test-renderer": "^18.0.0", "babel-jest": "^29.6.3", "eslint": "^8.19.0",
     "jest": "^29.6.3", "prettier": "2.8.8", "react-test-renderer": "18.3.1", "typescript": "5.0.4"})
add("overrides-nested",
    {"express": "^4.18.0", "webpack": "^5.90.0", "jsdom": "^20.0.0", "request": "^2.88.2"},
    None,
    overrides={"express": {"debug": "4.3.4", "qs": "6.11.0"}, "semver": "7.5.4",
               "webpack": {"enhanced-resolve": "5.15.0"}, "tough-cookie": "^4.1.3"})
add("optional-native",
    {"sharp": "^0.33.0", "esbuild": "^0.20.0", "@swc/core": "^1.4.0", "chokidar": "^2.1.8",
     "node-fetch": "^2.6.7", "bufferutil": "^4.0.8", "canvas": "^2.11.2", "lightningcss": "^1.24.0"})
add("workspaces-monorepo",
    {"lodash": "^4.17.21"},
    {"typescript": "^5.4.0", "eslint": "^8.57.0"},
    workspaces=["packages/*"],
    files={
        "packages/core/package.json": {"name": "@mono/core", "version": "1.2.0",
                                       "dependencies": {"debug": "^4.3.4", "semver": "^7.6.0",
                                                        "chalk": "^5.3.0"}},
        "packages/web/package.json": {"name": "@mono/web", "version": "0.1.0",
                                      "dependencies": {"@mono/core": "^1.0.0", "react": "^18.2.0",
                                                       "react-dom": "^18.2.0", "chalk": "^4.1.2"},
                                      "devDependencies": {"vite": "^5.2.0",
                                                          "@vitejs/plugin-react": "^4.2.0"}},
        "packages/cli/package.json": {"name": "@mono/cli", "version": "0.3.0",
                                      "dependencies": {"@mono/core": "*", "commander": "^9.0.0",
                                                       "semver": "^5.7.0", "yargs": "^17.7.0"}},
    })
add("express-api",
    {"express": "^4.19.2", "body-parser": "^1.20.2", "cors": "^2.8.5", "helmet": "^7.1.0",
     "morgan": "^1.10.0", "mongoose": "^8.3.0", "jsonwebtoken": "^9.0.2", "bcryptjs": "^2.4.3",
     "dotenv": "^16.4.5", "express-validator": "^7.0.1"},
    {"nodemon": "^3.1.0", "mocha": "^10.4.0", "chai": "^4.4.1", "supertest": "^7.0.0",
     "sinon": "^17.0.1", "nyc": "^15.1.0"})
add("webpack-full",
    {"react": "^18.2.0", "react-dom": "^18.2.0"},
    {"webpack": "^5.91.0", "webpack-cli": "^5.1.4", "webpack-dev-server": "^5.0.4",
     "html-webpack-plugin": "^5.6.0", "mini-css-extract-plugin": "^2.8.1", "css-loader": "^7.1.0",
     "sass-loader": "^14.1.1", "sass": "^1.72.0", "postcss-loader": "^8.1.1", "postcss": "^8.4.38",
     "babel-loader": "^9.1.3", "@babel/core": "^7.24.4", "@babel/preset-react": "^7.24.1",
     "@babel/preset-env": "^7.24.4", "terser-webpack-plugin": "^5.3.10",
     "copy-webpack-plugin": "^12.0.2", "fork-ts-checker-webpack-plugin": "^9.0.2",
     "ts-loader": "^9.5.1", "typescript": "^5.4.4"})
add("mui-emotion",
    {"@mui/material": "^5.15.0", "@mui/icons-material": "^5.15.0", "@mui/x-data-grid": "^7.0.0",
     "@mui/x-date-pickers": "^7.0.0", "@emotion/react": "^11.11.0", "@emotion/styled": "^11.11.0",
     "dayjs": "^1.11.10", "react": "^18.2.0", "react-dom": "^18.2.0"})
add("redux-stack",
    {"@reduxjs/toolkit": "^2.2.0", "react-redux": "^9.1.0", "redux-saga": "^1.3.0",
     "redux-persist": "^6.0.0", "react": "^18.2.0", "react-dom": "^18.2.0", "reselect": "^5.1.0",
     "react-router-dom": "^6.22.0", "formik": "^2.4.5", "yup": "^1.4.0"})
add("graphql-apollo",
    {"@apollo/server": "^4.10.0", "@apollo/client": "^3.9.0", "graphql": "^16.8.1",
     "graphql-tag": "^2.12.6", "@graphql-tools/schema": "^10.0.3", "react": "^18.2.0",
     "graphql-ws": "^5.15.0", "ws": "^8.16.0"},
    {"@graphql-codegen/cli": "^5.0.2", "@graphql-codegen/typescript": "^4.0.6",
     "@graphql-codegen/typescript-operations": "^4.2.0", "typescript": "^5.4.0"})
add("trpc-prisma-next",
    {"@trpc/server": "^10.45.0", "@trpc/client": "^10.45.0", "@trpc/react-query": "^10.45.0",
     "@trpc/next": "^10.45.0", "@tanstack/react-query": "^4.36.1", "zod": "^3.22.4",
     "@prisma/client": "^5.11.0", "next": "^14.1.0", "react": "^18.2.0", "react-dom": "^18.2.0",
     "superjson": "^2.2.1", "next-auth": "^4.24.7"},
    {"prisma": "^5.11.0", "typescript": "^5.4.0"})
add("electron-app",
    {"electron-store": "^8.2.0", "electron-updater": "^6.1.8"},
    {"electron": "^30.0.0", "electron-builder": "^24.13.3", "electron-log": "^5.1.2"})
add("nx-monorepo-tools",
    None,
    {"nx": "^18.2.0", "@nx/js": "^18.2.0", "@nx/workspace": "^18.2.0", "@nx/jest": "^18.2.0",
     "@nx/eslint": "^18.2.0", "@swc-node/register": "^1.8.0", "@swc/core": "^1.4.0",
     "jest": "^29.7.0", "ts-jest": "^29.1.0", "typescript": "~5.4.0"})
add("gulp-grunt-legacy",
    None,
    {"gulp": "^4.0.2", "gulp-sass": "^5.1.0", "gulp-babel": "^8.0.0", "gulp-uglify": "^3.0.2",
     "gulp-concat": "^2.6.1", "browser-sync": "^2.29.0", "grunt": "^1.6.1",
     "grunt-contrib-uglify": "^5.2.2", "grunt-contrib-watch": "^1.1.0", "node-sass": "^9.0.0",
     "bower": "^1.8.14"})
add("karma-webpack4",
    None,
    {"karma": "^6.4.0", "karma-chrome-launcher": "^3.1.0", "karma-mocha": "^2.0.1",
     "karma-webpack": "^4.0.2", "mocha": "^8.4.0", "chai": "^4.3.0", "sinon": "^9.2.0",
     "webpack": "^4.46.0", "babel-loader": "^8.2.0", "@babel/core": "^7.12.0",
     "@babel/preset-env": "^7.12.0"})
add("babel6-webpack3",
    {"react": "^15.6.2", "react-dom": "^15.6.2", "redux": "^3.7.2", "react-redux": "^5.0.7"},
    {"babel-core": "^6.26.3", "babel-loader": "^7.1.5", "babel-preset-env": "^1.7.0",
     "babel-preset-react": "^6.24.1", "webpack": "^3.12.0", "webpack-dev-server": "^2.11.5",
     "eslint": "^4.19.1", "eslint-plugin-react": "^7.10.0", "css-loader": "^0.28.11",
     "style-loader": "^0.21.0", "extract-text-webpack-plugin": "^3.0.2"})
add("docusaurus3",
    {"@docusaurus/core": "^3.2.0", "@docusaurus/preset-classic": "^3.2.0", "@mdx-js/react": "^3.0.0",
     "clsx": "^2.0.0", "prism-react-renderer": "^2.3.0", "react": "^18.0.0", "react-dom": "^18.0.0"},
    {"@docusaurus/module-type-aliases": "^3.2.0", "@docusaurus/types": "^3.2.0"})
add("remix-vite",
    {"@remix-run/node": "^2.8.1", "@remix-run/react": "^2.8.1", "@remix-run/serve": "^2.8.1",
     "isbot": "^4.1.0", "react": "^18.2.0", "react-dom": "^18.2.0"},
    {"@remix-run/dev": "^2.8.1", "@types/react": "^18.2.20", "typescript": "^5.1.6",
     "vite": "^5.1.0", "vite-tsconfig-paths": "^4.2.1"})
add("astro-react",
    {"astro": "^4.5.0", "@astrojs/react": "^3.1.0", "@astrojs/tailwind": "^5.1.0",
     "tailwindcss": "^3.4.1", "react": "^18.2.0", "react-dom": "^18.2.0",
     "@astrojs/mdx": "^2.2.0"})
add("stylelint-prettier",
    None,
    {"stylelint": "^16.2.0", "stylelint-config-standard": "^36.0.0",
     "stylelint-config-standard-scss": "^13.0.0", "stylelint-order": "^6.0.4",
     "prettier": "^3.2.5", "prettier-plugin-tailwindcss": "^0.5.12",
     "eslint-config-prettier": "^9.1.0", "eslint-plugin-prettier": "^5.1.3", "eslint": "^8.57.0",
     "lint-staged": "^15.2.2", "husky": "^9.0.11"})
add("orm-drivers",
    {"typeorm": "^0.3.20", "sequelize": "^6.37.0", "mysql2": "^3.9.0", "pg": "^8.11.0",
     "sqlite3": "^5.1.7", "mongodb": "^6.5.0", "knex": "^3.1.0", "reflect-metadata": "^0.2.1",
     "ioredis": "^5.3.2"})
add("aws-firebase",
    {"firebase": "^10.10.0", "firebase-admin": "^12.0.0", "@aws-sdk/client-s3": "^3.540.0",
     "@aws-sdk/client-dynamodb": "^3.540.0", "aws-sdk": "^2.1590.0"})
add("mocha-legacy",
    {"request": "^2.88.0", "async": "^2.6.0", "underscore": "^1.8.3"},
    {"mocha": "^5.2.0", "istanbul": "^0.4.5", "nyc": "^11.9.0", "sinon": "^4.5.0", "chai": "^3.5.0",
     "jshint": "^2.9.5", "coveralls": "^3.0.0"})
add("browser-automation",
    {"puppeteer-core": "^22.6.0", "playwright-core": "^1.43.0", "jsdom": "^24.0.0",
     "cheerio": "^1.0.0-rc.12", "selenium-webdriver": "^4.19.0"})
add("three-fiber",
    {"three": "^0.163.0", "@react-three/fiber": "^8.16.0", "@react-three/drei": "^9.105.0",
     "react": "^18.2.0", "react-dom": "^18.2.0", "d3": "^7.9.0", "framer-motion": "^11.0.0"})
add("ionic-capacitor",
    {"@capacitor/core": "^6.0.0", "@capacitor/android": "^6.0.0", "@capacitor/ios": "^6.0.0",
     "@ionic/react": "^8.0.0", "@ionic/react-router": "^8.0.0", "react": "^18.2.0",
     "react-dom": "^18.2.0", "react-router": "^5.3.4", "react-router-dom": "^5.3.4"},
    {"@capacitor/cli": "^6.0.0", "@vitejs/plugin-react": "^4.0.1", "vite": "^5.0.0"})
add("tanstack-start",
    {"@tanstack/react-router": "^1.30.0", "@tanstack/react-query": "^5.32.0",
     "@tanstack/react-table": "^8.16.0", "react": "^18.3.0", "react-dom": "^18.3.0",
     "@radix-ui/react-dialog": "^1.0.5", "@radix-ui/react-dropdown-menu": "^2.0.6",
     "class-variance-authority": "^0.7.0", "tailwind-merge": "^2.3.0", "lucide-react": "^0.376.0"},
    {"@tanstack/router-vite-plugin": "^1.30.0", "vite": "^5.2.0", "@vitejs/plugin-react-swc": "^3.6.0"})
add("react17-rtl14-eresolve",
    {"react": "^17.0.2", "react-dom": "^17.0.2"},
    {"@testing-library/react": "^14.0.0"})
add("legacy-peer-deps",
    {"react": "^17.0.2", "react-dom": "^17.0.2"},
    {"@testing-library/react": "^14.0.0", "react-test-renderer": "^18.2.0"},
    npmrc="legacy-peer-deps=true\n")
add("strict-peer-deps",
    {"react": "^18.2.0", "react-dom": "^18.2.0", "react-helmet": "^6.1.0"},
    None,
    npmrc="strict-peer-deps=true\n")
add("peer-set-plugins",
    None,
    {"postcss-load-config": "^4.0.2", "tailwindcss": "^3.4.0", "postcss-cli": "^11.0.0",
     "fdir": "^6.2.0", "tinyglobby": "^0.2.6", "yaml": "^1.10.2", "picomatch": "^2.3.1",
     "ajv-keywords": "^3.5.2", "ajv": "^6.12.6", "schema-utils": "^4.2.0"})
add("peer-sets-hoisting",
    None,
    {"postcss-load-config": "^4.0.2", "tailwindcss": "^3.4.0", "postcss-cli": "^11.0.0",
     "fdir": "^6.2.0", "tinyglobby": "^0.2.6", "yaml": "^1.10.2", "ajv-keywords": "^3.5.2",
     "ajv": "^6.12.6", "schema-utils": "^4.2.0", "eslint": "^8.57.0", "webpack": "^5.90.0"})
add("aliases-and-tags",
    {"lodash4": "npm:lodash@^4.17.21", "lodash3": "npm:lodash@^3.10.1",
     "react18": "npm:react@^18", "typescript": "latest", "debug": "*",
     "ms": ">=2.0.0 <2.1.3 || ^2.1.3"})

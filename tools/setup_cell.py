# Setup (the same in every notebook). On Colab it installs the book's package first.
import sys
if "google.colab" in sys.modules:
    %pip install -q "llmbook @ git+https://github.com/llmbook/llmbook@main"
    !apt-get -qq install -y fonts-noto-cjk > /dev/null
import llmbook
env = llmbook.start()

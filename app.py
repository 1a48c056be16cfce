"""Style transfer studio: the Gradio front end over `style_core` (the `studio` package).

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--weights PATH|random] [--cluster WHERE]

The entry of the local app and of the hosted demo (a Hugging Face Space runs this file).
"""

from studio.page import main

if __name__ == "__main__":
    main()

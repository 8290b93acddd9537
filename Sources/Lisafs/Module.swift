public enum LisafsModule {}
